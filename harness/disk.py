"""qcow2 disks made without root or loop devices: overlays over a backing
disk, and ext4 data disks labelled KSOLODATA, optionally preseeded; and the
sparse copy of a disk-sized file (an image, a guest's RAM)."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from harness.guest import DATA_LABEL
from harness.reproducible import E2FSPROGS_ENV
from harness.tools import run_tool


def create_overlay(backing: Path, path: Path, backing_format: str = "qcow2") -> Path:
    """A qcow2 overlay: the machine writes there, `backing` stays untouched."""
    backing_args = ["-F", backing_format, "-b", str(backing.resolve())]
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", *backing_args, str(path)])
    return path


def ext4_qcow2(
    path: Path,
    size: str,
    files: dict[str, str] | None = None,
    uuid: str | None = None,
    executable: frozenset[str] = frozenset(),
) -> Path:
    """A qcow2 disk holding one ext4 file system labelled KSOLODATA (no partition
    table, as stage 20 finds it by label). `files` (paths relative to the file
    system's root) are written into it, as a node configured earlier would have it.
    With a `uuid` (its UUID and hash seed) and no files, equal calls give equal bytes.
    The files named in `executable` are mode 0755."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        root, raw = Path(tmp) / "root", Path(tmp) / "data.raw"
        root.mkdir()
        for relative, content in (files or {}).items():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(0o755 if relative in executable else 0o644)
        eager = "lazy_itable_init=0,lazy_journal_init=0"  # no background init on first boot
        mkfs = ["mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-m", "0"]
        if uuid:
            mkfs += ["-U", uuid]
            eager += f",hash_seed={uuid}"
        run_tool(
            [*mkfs, "-E", eager, "-d", str(root), str(raw), size],
            env=E2FSPROGS_ENV if uuid else None,
        )
        run_tool(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)])
    return path


def copy_sparse(source: Path, target: Path) -> None:
    """Copy a file's data and keep its holes: the guest's RAM is mostly pages
    it never touched (a 512 MiB guest at stage 90 has about 115 MiB)."""
    with source.open("rb") as src, target.open("wb", buffering=0) as dst:
        size = os.fstat(src.fileno()).st_size
        offset = 0
        while offset < size:
            try:
                offset = os.lseek(src.fileno(), offset, os.SEEK_DATA)
            except OSError as err:
                if err.errno != errno.ENXIO:  # ENXIO: no data after offset
                    raise
                break
            end = os.lseek(src.fileno(), offset, os.SEEK_HOLE)
            dst.seek(offset)
            while offset < end:
                sent = os.sendfile(dst.fileno(), src.fileno(), offset, end - offset)
                if sent == 0:
                    raise OSError(f"{source}: shorter than its size")
                offset += sent
        dst.truncate(size)
