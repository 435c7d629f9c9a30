"""One fixed time for everything the builder writes, so that equal inputs give
equal bytes: file times in the ISO and on FAT and ext4 file systems, and the
tools' own clocks (docs/boot-flow.md "Media")."""

from __future__ import annotations

import os
from pathlib import Path

FIXED_TIME = 946684800  # 2000-01-01T00:00:00Z: FAT cannot keep a time before 1980
# what the tools read instead of the clock
E2FSPROGS_ENV = {"E2FSPROGS_FAKE_TIME": str(FIXED_TIME)}
XORRISO_ENV = {"SOURCE_DATE_EPOCH": str(FIXED_TIME)}  # the volume's dates, UUID and GPT ids


def fix_times(root: Path) -> None:
    """Every file and directory under `root`, and `root`, gets FIXED_TIME."""
    for entry in [root, *root.rglob("*")]:
        os.utime(entry, (FIXED_TIME, FIXED_TIME), follow_symlinks=False)
