"""The built image as the rest of the harness sees it: a directory of known
files with a manifest, found under the harness's cache root. The builder
(harness.build) writes it; machines (harness.vm) only read it."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.guest import LABELS, RELEASE_LABELS
from harness.private import foreign

IMAGE_FILES = (
    "vmlinuz",
    "initramfs",
    "kubesolo-os.iso",
    "kubesolo-os.img",
    "data.qcow2",
    "manifest.json",
)
# files that images of earlier releases lack: an image without them still
# opens (the upgrade checks boot one), one whose manifest names them does not
ADDED_LATER = ("kubesolo-os.img",)
# mostly holes (an empty data partition): digested by their non-zero blocks
SPARSE_FILES = ("kubesolo-os.img",)
DIGEST_BLOCK = 1 << 16
MUTABLE_FILES = ("data.qcow2",)  # a user may boot the exported data disk directly
BZIMAGE_MAGIC, BZIMAGE_MAGIC_AT = b"HdrS", 0x202  # the x86 boot protocol header
FLAVOURS = ("test", "release")


def cache_root() -> Path:
    """$XDG_CACHE_HOME/kubesolo-harness (default ~/.cache/kubesolo-harness),
    refused in one line if another user could have put things in it: the
    builder runs what it caches (busybox) and boots what it built."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "kubesolo-harness"
    resolved = Path(os.path.realpath(root))
    for path, parent in (
        (root, False),
        (resolved, False),
        (root.parent, True),
        (resolved.parent, True),
    ):
        problem = foreign(path, sticky_ok=parent)  # in a sticky parent, /tmp's, ours stays ours
        if problem:
            raise UserError(
                f"the cache {root}: {path} {problem}: the harness trusts nothing in it; "
                "remove it, or point XDG_CACHE_HOME at a directory of your own"
            )
    return root


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks (images and disks are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def block_digest(path: Path) -> str:
    """ "blocks:" + the sha256 of the size and of every block that is not all
    zeros with its offset: equal for equal content however sparse a copy is,
    and it reads only the data a sparse file holds (SEEK_DATA)."""
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    zero = bytes(DIGEST_BLOCK)
    with path.open("rb") as f:
        at = 0  # the first block not yet digested
        while at < size:
            try:
                data = os.lseek(f.fileno(), at, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            hole = os.lseek(f.fileno(), data, os.SEEK_HOLE)
            at = max(at, data - data % DIGEST_BLOCK)
            f.seek(at)
            while at < hole:
                block = f.read(DIGEST_BLOCK)
                if block != zero[: len(block)]:
                    digest.update(at.to_bytes(8, "little") + block)
                at += len(block)
    return "blocks:" + digest.hexdigest()


def file_digest(path: Path) -> str:
    """How an image's manifest names a file's content."""
    return block_digest(path) if path.name in SPARSE_FILES else sha256_file(path)


def in_use_file(entry: Path) -> Path:
    """Held (a shared flock) by every machine that runs an image: the cache's
    pruning passes over an image someone's disks are built on."""
    return entry.with_name(entry.name + ".in-use")


def kept_refs(entry: Path) -> Path:
    """Where a run that keeps a disk built on an image says so (one file per
    kept run directory, naming it): the image stays while that directory does."""
    return entry.with_name(entry.name + ".kept")


@dataclass(frozen=True)
class Image:
    """A built image directory and its manifest."""

    path: Path

    @property
    def manifest(self) -> dict:
        return json.loads((self.path / "manifest.json").read_text())

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initramfs(self) -> Path:
        return self.path / "initramfs"

    @property
    def iso(self) -> Path:
        return self.path / "kubesolo-os.iso"

    @property
    def disk_image(self) -> Path:
        return self.path / "kubesolo-os.img"

    @property
    def data_disk(self) -> Path:
        return self.path / "data.qcow2"

    def cmdline(self, label: str | None = None) -> str:
        """The kernel command line of a bootloader label (default: the default)."""
        manifest = self.manifest
        name = label or manifest["default_label"]
        try:
            return str(manifest["labels"][name])
        except KeyError:
            raise UserError(
                f"no boot label {name!r}; the image has {', '.join(manifest['labels'])}"
            ) from None

    def lease(self) -> int:
        """A shared lock on this image (in_use_file) for as long as the
        returned descriptor is open."""
        fd = os.open(in_use_file(self.path), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def keep_for(self, run_dir: Path) -> None:
        """`run_dir` keeps disks built on this (cached) image past its run."""
        if self.path.parent != cache_root() / "images":
            return  # not the cache's: nothing prunes it
        refs = kept_refs(self.path)
        name = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
        with contextlib.suppress(OSError):
            refs.mkdir(exist_ok=True)
            (refs / name).write_text(f"{run_dir.resolve()}\n")

    @classmethod
    def open(cls, path: Path) -> Image:
        """An existing image directory, checked file by file against its manifest,
        so that a truncated or replaced file is one clear line, not a boot that
        hangs or panics minutes later."""
        rebuild = "build one with `kubesolo-harness build --out DIR`"
        if not path.is_dir():
            raise UserError(f"{path}: no such image directory; {rebuild}")
        missing = [f for f in IMAGE_FILES if not (path / f).is_file()]
        if set(missing) - set(ADDED_LATER):
            raise UserError(
                f"{path} is not a KubeSolo OS image directory (missing {', '.join(missing)}); "
                f"{rebuild}"
            )
        image = cls(path)
        if missing and any(f in image.manifest.get("files", {}) for f in missing):
            raise UserError(f"{path}: {', '.join(missing)} is missing; {rebuild}")
        problem = image.problem()
        if problem:
            raise UserError(f"{path}: {problem}; rebuild it (`kubesolo-harness build --out DIR`)")
        return image

    def problem(self) -> str | None:
        """What is wrong with this image directory, or None."""
        try:
            manifest = self.manifest
            digests, labels = dict(manifest["files"]), dict(manifest["labels"])
        except (ValueError, KeyError, TypeError):
            return "manifest.json is not a KubeSolo OS image manifest"
        missing = [n for n in [*digests, "vmlinuz"] if not (self.path / n).is_file()]
        if missing:
            return f"{', '.join(sorted(set(missing)))} missing"
        if self.kernel.read_bytes()[BZIMAGE_MAGIC_AT : BZIMAGE_MAGIC_AT + 4] != BZIMAGE_MAGIC:
            return "vmlinuz is not a Linux kernel (no bzImage header)"
        for name, digest in digests.items():
            if name in MUTABLE_FILES:
                continue
            if file_digest(self.path / name) != digest:
                return f"{name} does not match manifest.json (truncated or replaced)"
        promised = RELEASE_LABELS if manifest.get("flavour") == "release" else LABELS
        absent = [label for label in promised if label not in labels]
        if absent:
            return f"the boot menu lacks the labels {', '.join(absent)}"
        return None
