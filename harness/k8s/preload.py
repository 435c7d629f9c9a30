"""Side-loading the suites' images into KubeSolo's containerd from the
--kubesolo-images share (docs/kubesolo.md "Images"): which archives, and the
import itself. KubeSolo wipes side-loaded images at every start, so the node
imports them after every boot, once its system rollouts (CoreDNS, local-path)
are done: an import while KubeSolo deploys them takes the CPUs they need."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.k8s import commands
from harness.k8s.errors import KubeBlocked, PreloadError
from harness.k8s.image_refs import image_tags, missing_images
from harness.vm.protocols import ShellAccess

IMAGE_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def image_archives(directory: Path) -> list[str]:
    """Names of the image archives (docker-archive or OCI tarballs) to import, sorted."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(IMAGE_ARCHIVE_SUFFIXES)
    )


def containerd_socket(machine: ShellAccess) -> str:
    socket = machine.succeed(commands.containerd_socket_command(), timeout=30).strip()
    if not socket:
        raise KubeBlocked("no containerd socket found on the node")
    return socket


def listed_images(machine: ShellAccess, socket: str | None = None) -> list[str]:
    """The image names containerd holds in namespace k8s.io."""
    socket = socket or containerd_socket(machine)
    listing = machine.succeed(commands.ctr_command(socket, "images", "ls", "-q"), timeout=60)
    return listing.split()


def import_images(
    machine: ShellAccess, directory: Path, wanted: Sequence[str], busybox_ref: str, timeout: float
) -> tuple[list[str], list[str]]:
    """Import every archive of `directory` with ctr, tag what the kubelet will ask for, and
    check the `wanted` images are there: (archive names, image names now present)."""
    names = image_archives(directory)
    if not names:
        raise PreloadError(f"no image archives (*.tar) in {directory}")
    machine.succeed(commands.mount_share_command(), timeout=60)
    socket = containerd_socket(machine)
    for command in commands.import_commands(socket, names):
        machine.succeed(command, timeout=timeout)
    present = listed_images(machine, socket)
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
