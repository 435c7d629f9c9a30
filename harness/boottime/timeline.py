"""The stage timeline of a boot, from the console: each stage's start and
duration, timed by when its lines reached the host (so it measures what a
user waits for, TCG included)."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from harness.guest import stage_done, stage_failed, stage_started

START = re.compile(stage_started().encode())
DONE = re.compile(f"{stage_done()}|{stage_failed()}".encode())


@dataclass(frozen=True)
class Stage:
    name: str
    start: float  # seconds after the first console byte of the boot
    duration: float | None  # None: the stage has not finished
    ok: bool


def arrival_time(offset: int, arrivals: list[tuple[int, float]]) -> float:
    """Host time at which the byte at `offset` arrived; arrivals are
    (end offset of a chunk, time) in order."""
    ends = [end for end, _ in arrivals]
    i = bisect.bisect_right(ends, offset)
    return arrivals[min(i, len(arrivals) - 1)][1]


def stage_timeline(data: bytes, arrivals: list[tuple[int, float]], base: int = 0) -> list[Stage]:
    """Stages of the boot whose console starts at offset `base` of `data`."""
    if not arrivals:
        return []
    t0 = arrival_time(base, arrivals)
    window = data[base:]
    starts = {m.group(1).decode(): m for m in START.finditer(window)}
    ends = {(m.group(1) or m.group(2)).decode(): m for m in DONE.finditer(window)}
    stages = []
    for name, start in starts.items():
        begun = arrival_time(base + start.start(), arrivals) - t0
        end = ends.get(name)
        duration = None
        if end is not None:
            duration = arrival_time(base + end.start(), arrivals) - t0 - begun
        ok = end is not None and b"[OK]" in end.group(0)
        stages.append(
            Stage(name, round(begun, 3), None if duration is None else round(duration, 3), ok)
        )
    return sorted(stages, key=lambda s: s.start)
