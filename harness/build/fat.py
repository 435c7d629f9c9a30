"""FAT file systems in a file (EFI system partitions), made without root or
loop devices by dosfstools and mtools, reproducibly: equal files give equal
bytes (a fixed volume serial, one fixed time on every file and directory)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from harness.reproducible import fix_times
from harness.tools import run_tool

# FAT keeps local times: the fixed time (harness.reproducible), read in UTC
MTOOLS_ENV = {"TZ": "UTC", "MTOOLS_SKIP_CHECK": "1"}
FAT32_MIN_MIB = 33  # fewer clusters than FAT32's minimum below this (512-byte clusters)


def fat_image(path: Path, size_mib: int, label: str, files: dict[str, Path | bytes]) -> Path:
    """A FAT file system of `size_mib` MiB at `path` holding `files`
    (path inside -> a host file or the bytes); FAT32 where it fits, as
    firmware best reads an ESP, else what mkfs.fat picks for the size."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        tree = Path(tmp) / "tree"
        for inside, content in sorted(files.items()):
            target = tree / inside
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                shutil.copyfile(content, target)
        fix_times(tree)
        path.unlink(missing_ok=True)
        kind = ["-F", "32"] if size_mib >= FAT32_MIN_MIB else []
        mkfs = ["mkfs.fat", "-C", *kind, "-n", label, "--invariant", str(path)]
        run_tool([*mkfs, str(size_mib * 1024)], env=MTOOLS_ENV)
        tops = sorted(str(p) for p in tree.iterdir())
        run_tool(["mcopy", "-s", "-m", "-i", str(path), *tops, "::/"], env=MTOOLS_ENV)
    return path


def read_file(image: Path, inside: str, offset: int = 0) -> bytes:
    """One file of a FAT file system that starts `offset` bytes into `image`."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        run_tool(
            ["mcopy", "-n", "-i", f"{image}@@{offset}", f"::/{inside}", str(out)], env=MTOOLS_ENV
        )
        return out.read_bytes()
