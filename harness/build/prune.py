"""Old cache entries go: every change to build/ or the builder makes a new
image (tens of MB) and every tools change a new runtime tree (about 100 MB),
so a cache that only grows fills a developer's disk in days. An entry is a
directory with a sibling `<name>.lock`; a cache hit touches it."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from filelock import FileLock, Timeout

from harness.artefact import in_use_file, kept_refs
from harness.private import lock_is_held

KEEP = 8  # the most recently used entries always stay
MIN_IDLE = 3600.0  # and so does anything used within the last hour (a concurrent run)


def lock_of(entry: Path) -> Path:
    return entry.with_name(entry.name + ".lock")


def touch(entry: Path) -> None:
    """Mark an entry as used now."""
    os.utime(entry)


def stale_entries(directory: Path, now: float, keep: int = KEEP) -> list[Path]:
    """Entries beyond the `keep` most recently used that nobody used for MIN_IDLE."""
    entries = [
        p for p in directory.iterdir() if p.is_dir() and p.with_name(p.name + ".lock").exists()
    ]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [p for p in entries[keep:] if now - p.stat().st_mtime > MIN_IDLE]


def in_use(entry: Path) -> bool:
    """A machine runs on the image (its lease), or a kept run directory holds
    disks built on it (harness.artefact.Image.keep_for)."""
    refs = kept_refs(entry)
    if refs.is_dir():
        for ref in refs.iterdir():
            with contextlib.suppress(OSError):
                if Path(ref.read_text().strip()).exists():
                    return True
    return lock_is_held(in_use_file(entry))


def prune(directory: Path, keep: int = KEEP) -> list[Path]:
    """Remove the stale entries of a cache directory whose lock is free and
    that nobody uses."""
    removed = []
    for entry in stale_entries(directory, time.time(), keep):
        if in_use(entry):
            continue
        try:
            with FileLock(str(lock_of(entry)), timeout=0):
                shutil.rmtree(entry, ignore_errors=True)
                shutil.rmtree(kept_refs(entry), ignore_errors=True)
        except Timeout:  # being built or checked right now
            continue
        # the empty lock file stays: unlinking it could let a process waiting on
        # the old file and one opening a new one both hold "the" lock
        removed.append(entry)
    return removed
