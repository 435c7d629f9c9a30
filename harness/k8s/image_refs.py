"""Image names as containerd stores them and as the kubelet asks for them
(docs/kubesolo.md "Images"): pure name arithmetic, no node needed."""

from __future__ import annotations

from collections.abc import Iterable

from harness.k8s.kubesolo import LOCAL_PATH_HELPER_IMAGE


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


def image_repository(ref: str) -> str:
    """The normalized name without tag or digest: docker.io/library/nginx for nginx:stable."""
    normal = normalize_image_ref(ref).split("@", 1)[0]
    name, _, tag = normal.rpartition(":")
    return name if name and "/" not in tag else normal
