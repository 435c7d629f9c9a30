"""The power-cut test's reading of its append logs, run by busybox sh on the
host (docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults"): what
a log holds after a cut, NUL bytes and torn lines included, counts exactly
the appends that are there."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from power_cut_writer import APPEND_LOG, appends_command

BUSYBOX = shutil.which("busybox")


def counts(*logs: bytes, tmp_path: Path) -> dict[tuple[str, int], int]:
    dirs = []
    for i, log in enumerate(logs):
        directory = tmp_path / f"p{i}"
        directory.mkdir()
        (directory / APPEND_LOG).write_bytes(log)
        dirs.append(str(directory))
    out = subprocess.run(
        [BUSYBOX, "sh", "-c", appends_command(tuple(dirs))], capture_output=True, check=True
    ).stdout.decode()
    found = {}
    for line in out.splitlines():
        path, cut, count = line.split()
        found[Path(path).name, int(cut)] = int(count)
    return found


def appends(cut: int, first: int, last: int) -> bytes:
    return b"".join(b"append %d %d\n" % (cut, n) for n in range(first, last + 1))


@pytest.mark.skipif(BUSYBOX is None, reason="needs busybox on the host (scripts/setup.sh)")
def test_appends_are_counted_through_nul_tails_and_torn_lines(tmp_path):
    whole = appends(1, 1, 5) + appends(2, 1, 3)
    # cut 1's unsynced tail read back as NULs, then cut 2 appended after it
    nul_tail = appends(1, 1, 4) + b"append 1 5\x00\x00\x00\x00" + appends(2, 1, 3)
    # a torn line: cut 1's last append half written, no newline
    torn = appends(1, 1, 4) + b"append 1 " + appends(2, 1, 2)
    # a gap: cut 2's appends 1 and 2 are gone, so none of its later ones count
    gap = appends(1, 1, 2) + appends(2, 3, 4)
    assert counts(whole, nul_tail, torn, gap, tmp_path=tmp_path) == {
        ("p0", 1): 5, ("p0", 2): 3,
        ("p1", 1): 4, ("p1", 2): 3,
        ("p2", 1): 4, ("p2", 2): 2,
        ("p3", 1): 2,
    }  # fmt: skip
