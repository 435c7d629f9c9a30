"""Side-loading the suites' images into KubeSolo's containerd from the
--kubesolo-images share (docs/kubesolo.md "Images"): which archives, which
names the kubelet will ask for, and the import itself."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.k8s import commands
from harness.k8s.errors import KubeBlocked, PreloadError
from harness.k8s.kubesolo import LOCAL_PATH_HELPER_IMAGE
from harness.vm.machine import Machine

IMAGE_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def image_archives(directory: Path) -> list[str]:
    """Names of the image archives (docker-archive or OCI tarballs) to import, sorted."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(IMAGE_ARCHIVE_SUFFIXES)
    )


def normalize_image_ref(ref: str) -> str:
    """Docker's normalisation, as containerd stores refs: nginx:stable -> docker.io/library/..."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if digest:
        return f"{domain}/{path}@{digest}"
    return f"{domain}/{path}" if ":" in path.rsplit("/", 1)[-1] else f"{domain}/{path}:latest"


def image_tags(present: Iterable[str], wanted: Iterable[str], busybox_ref: str) -> dict[str, str]:
    """target -> source: the tags that give the kubelet every name it will ask for.

    ctr keeps an OCI archive's ref name as written (`nginx:stable`) while the kubelet asks
    for the normalized one (`docker.io/library/nginx:stable`); local-path's helper pod asks
    for plain `busybox`, i.e. `docker.io/library/busybox:latest`.
    """
    refs = set(present)
    by_normal: dict[str, str] = {}
    for ref in sorted(refs):
        by_normal.setdefault(normalize_image_ref(ref), ref)
    sources = {normalize_image_ref(ref): normalize_image_ref(ref) for ref in wanted}
    sources[LOCAL_PATH_HELPER_IMAGE] = normalize_image_ref(busybox_ref)
    return {
        target: by_normal[source]
        for target, source in sources.items()
        if target not in refs and source in by_normal
    }


def missing_images(present: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The wanted images no present name (after normalization) provides."""
    normal = {normalize_image_ref(ref) for ref in present}
    return [ref for ref in wanted if normalize_image_ref(ref) not in normal]


def import_images(
    machine: Machine, directory: Path, wanted: Sequence[str], busybox_ref: str, timeout: float
) -> tuple[list[str], list[str]]:
    """Import every archive of `directory` with ctr, tag what the kubelet will ask for, and
    check the `wanted` images are there: (archive names, image names now present)."""
    names = image_archives(directory)
    if not names:
        raise PreloadError(f"no image archives (*.tar) in {directory}")
    machine.succeed(commands.mount_share_command(), timeout=60)
    socket = machine.succeed(commands.containerd_socket_command(), timeout=30).strip()
    if not socket:
        raise KubeBlocked("no containerd socket found on the node")
    for command in commands.import_commands(socket, names):
        machine.succeed(command, timeout=timeout)
    listing = machine.succeed(commands.ctr_command(socket, "images", "ls", "-q"), timeout=60)
    present = listing.split()
    tags = image_tags(present, wanted, busybox_ref)
    for target, source in tags.items():
        machine.succeed(commands.ctr_command(socket, "images", "tag", source, target), timeout=60)
    missing = missing_images([*present, *tags], wanted)
    if missing:
        raise PreloadError(
            f"{', '.join(missing)} not among the images {', '.join(names)} gave "
            f"({', '.join(sorted(present))}): an OCI archive's ref name must name the "
            "image, not only a tag (see README)"
        )
    return names, sorted({*present, *tags})
