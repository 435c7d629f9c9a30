"""When console lines reached the host: the clock of the disk-fault and power-cut
tests (the guest's own lines, timed as a user sees them, TCG included)."""

from __future__ import annotations

import re

from harness.boottime.timeline import arrival_time
from harness.vm.protocols import Target


def line_arrivals(vm: Target, pattern: str, since: int) -> list[tuple[float, str]]:
    """(host monotonic time its last byte arrived, the line) for each console line
    after the cursor `since` that matches `pattern`."""
    data, chunks = vm.console.snapshot()
    regex = re.compile(rf"[^\r\n]*(?:{pattern})[^\r\n]*".encode())
    return [
        (arrival_time(match.end() - 1, chunks), match.group(0).decode(errors="replace"))
        for match in regex.finditer(data, since)
    ]


def first_arrival(vm: Target, pattern: str, since: int) -> float:
    found = line_arrivals(vm, pattern, since)
    assert found, f"no console line matches /{pattern}/"
    return found[0][0]
