"""Data disks with faults (docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk
faults"), made on the host without root or loop devices: a file system full to the
brim, a primary superblock overwritten with zeros, debugfs edits; and the one way to tell that the
OS did not write to a disk: the sha256 of its raw content."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness import guest
from harness.artefact import sha256_file
from harness.errors import ToolFailed
from harness.tools import run_tool

SUPERBLOCK_OFFSET = 1024  # the primary ext4 superblock: bytes 1024..2047
SUPERBLOCK_SIZE = 1024
FILL_BYTE = b"\xa5"  # not zeros: mkfs -d would store zero blocks as holes

# The directories stage 20 creates on a blank partition (docs "First-boot layout"),
# so that a preseeded disk is one a node has booted from before.
LAYOUT_DIRS = (
    *(source for source, _ in guest.BIND_MOUNTS),
    "usr-local/bin",
    Path(guest.SAVED_NETWORK).parent.name,
)
LAYOUT_MARKER = {".kubesolo-os": "layout=1\n"}


@contextlib.contextmanager
def raw_copy(disk: Path) -> Iterator[Path]:
    """The raw content of a qcow2 disk (what the guest sees), as a temporary file."""
    with tempfile.TemporaryDirectory(dir=disk.parent) as tmp:
        raw = Path(tmp) / "disk.raw"
        run_tool(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(disk), str(raw)])
        yield raw


def raw_sha256(disk: Path) -> str:
    """The sha256 of a disk's raw content, so that a change of the qcow2
    container alone (its metadata) does not count as a write."""
    with raw_copy(disk) as raw:
        return sha256_file(raw)


def zero_primary_superblock(disk: Path) -> None:
    """Overwrite the primary superblock of the file system on a qcow2 disk with zeros."""
    write = f"write -P 0 {SUPERBLOCK_OFFSET} {SUPERBLOCK_SIZE}"
    run_tool(["qemu-io", "-f", "qcow2", "-c", write, str(disk)])


def backup_superblock(disk: Path) -> int:
    """The block of the first backup superblock, as dumpe2fs reads it on the host."""
    with raw_copy(disk) as raw:
        listing = run_tool(["dumpe2fs", str(raw)])
    match = re.search(r"Backup superblock at (\d+)", listing)
    assert match, "premise: the file system has a backup superblock"
    return int(match.group(1))


def debugfs_edit(disk: Path, *requests: str) -> None:
    """Change the file system on a qcow2 disk with debugfs -w requests (the way
    to make faults that e2fsck, not the journal, has to deal with)."""
    with raw_copy(disk) as raw:
        for request in requests:
            run_tool(["debugfs", "-w", "-R", request, str(raw)])
        run_tool(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(disk)])


def _tree(root: Path, files: dict[str, str | bytes], dirs: tuple[str, ...]) -> None:
    for directory in dirs:
        (root / directory).mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)


def _free_blocks(raw: Path) -> tuple[int, int]:
    """(free blocks, block size) of an ext4 image."""
    header = run_tool(["dumpe2fs", "-h", str(raw)])
    free = re.search(r"^Free blocks:\s+(\d+)", header, re.M)
    size = re.search(r"^Block size:\s+(\d+)", header, re.M)
    assert free and size, header
    return int(free.group(1)), int(size.group(1))


def full_ext4_qcow2(
    path: Path, size: str, files: dict[str, str], dirs: tuple[str, ...] = LAYOUT_DIRS
) -> Path:
    """A KSOLODATA ext4 disk holding `files` and `dirs` (by default the layout of a
    node that has booted before) and fill files that leave no block free: the
    largest that fits, found by bisection, then the largest in what is left."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        root, raw = Path(tmp) / "root", Path(tmp) / "data.raw"
        content: dict[str, str | bytes] = {**LAYOUT_MARKER, **files}
        _tree(root, content, dirs)
        mkfs = ["mkfs.ext4", "-q", "-F", "-L", guest.DATA_LABEL, "-m", "0"]
        mkfs += ["-E", "lazy_itable_init=0,lazy_journal_init=0", "-d", str(root), str(raw), size]

        def fits(fill: Path, blocks: int) -> bool:
            fill.write_bytes(FILL_BYTE * (blocks * block_size))
            try:
                run_tool(mkfs)
                return True
            except ToolFailed:
                return False

        run_tool(mkfs)
        free, block_size = _free_blocks(raw)
        for index in range(8):
            if free == 0:
                break
            fill, low, high = root / f"fill-{index}", 0, free  # low fits, high + 1 does not
            while low < high:
                middle = (low + high + 1) // 2
                low, high = (middle, high) if fits(fill, middle) else (low, middle - 1)
            fits(fill, low)
            free, _ = _free_blocks(raw)
        assert free == 0, f"premise: could not fill {path.name} ({free} blocks still free)"
        run_tool(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)])
    return path
