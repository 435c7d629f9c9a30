"""OCI image archives written without a daemon: a deterministic tar layer, the
image config, the manifest and an index naming the image, packed as an OCI
image layout in a plain tar (what `ctr images import` and `skopeo copy
oci-archive:` read). Equal inputs give byte-identical archives: entries are
sorted, owners numeric, times fixed, JSON canonical, gzip without a time.

Names: containerd's importer names an image after the index entry's
`io.containerd.image.name` annotation, verbatim, and only without it after
`org.opencontainers.image.ref.name` passed through ctr's translator: ctr 1.6
keeps a full reference there but turns a bare tag into `import-<date>:<tag>`,
and `--base-name` drops names outside its base. Every entry carries the full
reference in both, so each importer gives the same name."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import tarfile
import time
from dataclasses import dataclass

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUT_VERSION = "1.0.0"
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
PLATFORM = {"architecture": "amd64", "os": "linux"}


@dataclass(frozen=True)
class Entry:
    """One file system entry of a layer."""

    path: str  # relative, no leading slash: "usr/sbin/nginx"
    kind: str  # "file", "dir" or "link"
    mode: int = 0o755  # permission bits (setuid and sticky included)
    data: bytes = b""
    target: str = ""  # of a link
    uid: int = 0
    gid: int = 0


class Layer:
    """A layer's entries by path; parent directories are added on demand."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def add(self, entry: Entry) -> None:
        parts = entry.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent not in self.entries:
                self.entries[parent] = Entry(parent, "dir", 0o755)
        self.entries[entry.path] = entry

    def dir(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> None:
        self.add(Entry(path, "dir", mode, uid=uid, gid=gid))

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.add(Entry(path, "file", mode, data))

    def link(self, path: str, target: str) -> None:
        self.add(Entry(path, "link", 0o777, target=target))

    def __contains__(self, path: str) -> bool:
        return path in self.entries

    def tar(self, mtime: int = 0) -> bytes:
        """The layer as an uncompressed tar: sorted, numeric owners, one mtime."""
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                entry = self.entries[path]
                info = tarfile.TarInfo(path + ("/" if entry.kind == "dir" else ""))
                info.mtime, info.uid, info.gid = mtime, entry.uid, entry.gid
                info.uname = info.gname = ""
                info.mode = stat.S_IMODE(entry.mode)
                if entry.kind == "dir":
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                elif entry.kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, entry.target
                    tar.addfile(info)
                else:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
        return out.getvalue()


def canonical_json(value: object) -> bytes:
    """JSON with sorted keys and no spaces: its digest depends on content only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": digest(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Image:
    """What makes an image: its layer, its run-time config (the OCI config's
    `config` object: Entrypoint, Cmd, Env, ...), its names and provenance."""

    layer: Layer
    config: dict
    refs: tuple[str, ...]  # full references: "docker.io/library/nginx:stable"
    created_by: str  # the config's history line
    mtime: int = 0  # file times and `created` (SOURCE_DATE_EPOCH)


def created(mtime: int) -> str:
    """An OCI timestamp (RFC 3339, UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))


def blobs(image: Image) -> tuple[dict[str, bytes], bytes]:
    """(digest -> blob, index.json) of an image."""
    layer_tar = image.layer.tar(image.mtime)
    layer_gz = gzip.compress(layer_tar, compresslevel=6, mtime=0)
    config = canonical_json(
        {
            **PLATFORM,
            "created": created(image.mtime),
            "config": image.config,
            "rootfs": {"type": "layers", "diff_ids": [digest(layer_tar)]},
            "history": [{"created": created(image.mtime), "created_by": image.created_by}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": descriptor(MEDIA_CONFIG, config),
            "layers": [descriptor(MEDIA_LAYER_GZIP, layer_gz)],
        }
    )
    index = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                descriptor(
                    MEDIA_MANIFEST,
                    manifest,
                    annotations={CONTAINERD_NAME: ref, OCI_REF_NAME: ref},
                    platform=PLATFORM,
                )
                for ref in image.refs
            ],
        }
    )
    return {digest(b): b for b in (layer_gz, config, manifest)}, index


def archive(image: Image) -> bytes:
    """The OCI image layout of an image as a plain tar: oci-layout, index.json,
    blobs/sha256/<hex>."""
    found, index = blobs(image)
    files = {
        "oci-layout": canonical_json({"imageLayoutVersion": LAYOUT_VERSION}),
        "index.json": index,
        **{"blobs/sha256/" + d.split(":", 1)[1]: b for d, b in sorted(found.items())},
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("blobs/", "blobs/sha256/"):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, image.mtime
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, image.mtime
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
