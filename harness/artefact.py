"""The built image as the rest of the harness sees it: a directory of known
files with a manifest, found under the harness's cache root. The builder
(harness.build) writes it; machines (harness.vm) only read it."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

IMAGE_FILES = ("vmlinuz", "initramfs", "kubesolo-os.iso", "data.qcow2", "manifest.json")
FLAVOURS = ("test", "release")


def cache_root() -> Path:
    """$XDG_CACHE_HOME/kubesolo-harness (default ~/.cache/kubesolo-harness)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubesolo-harness"


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks (images and disks are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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

    @classmethod
    def open(cls, path: Path) -> Image:
        """An existing image directory, checked to hold every file."""
        missing = [f for f in IMAGE_FILES if not (path / f).is_file()]
        if missing:
            raise UserError(
                f"{path} is not a KubeSolo OS image directory (missing {', '.join(missing)}); "
                "build one with `kubesolo-harness build --out DIR`"
            )
        return cls(path)
