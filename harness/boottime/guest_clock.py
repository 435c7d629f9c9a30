"""A boot timed on the guest's own clock (docs/architecture.md "Boot-time
gate"). The gate's boots run QEMU counting instructions (`-icount`): the
guest's clock then advances with the instructions it runs, not with how busy
the host is, and init writes each stage's start and end on that clock
(`guest.STAGE_CLOCK_FILE`). The kernel's time is its own log's stamp on
running init. The wall-clock timelines of harness.boottime.timeline stay for every
other boot: they are what a person waiting at the console sees."""

from __future__ import annotations

import re
import subprocess
from typing import Any

from harness import guest
from harness.boottime.timeline import Stage
from harness.errors import UserError

ICOUNT_SHIFT = 1  # 2 ns of guest time per instruction
# Counting instructions, an idle guest's clock runs with the host's
# (sleep=on), so a wait on host I/O costs what it takes; with sleep=off it
# warped to the next timer instead, and stage 20's formatting of the data disk
# read 10 to 250 s of guest time (docs/architecture.md "Boot-time gate").
ICOUNT_SLEEP = "sleep=on"
ICOUNT = f"shift={ICOUNT_SHIFT},{ICOUNT_SLEEP}"
# the command that reads a boot's guest clock: the kernel's stamp on running
# init, then init's lines
READ_COMMAND = f"dmesg | grep -m1 ' as init process$'; cat {guest.STAGE_CLOCK_FILE}"
INIT_LINE = re.compile(r"^\[\s*(\d+\.\d+)\] Run \S+ as init process$")


class ClockError(UserError):
    """A boot's guest clock is missing or incomplete."""


def parse(text: str) -> tuple[Stage, ...]:
    """The stages of one boot on the guest's clock, from READ_COMMAND's output:
    stage 00 starts when the kernel ran init (its /proc is not mounted before
    then), every other stage at init's own reading; stage 90 has started."""
    lines = text.strip().splitlines()
    init = INIT_LINE.match(lines[0]) if lines else None
    if init is None:
        raise ClockError(f"no kernel line on running init in {text[:200]!r}")
    clock: dict[tuple[str, str], float] = {(guest.STAGES[0], "start"): float(init.group(1))}
    for line in lines[1:]:
        try:
            name, event, uptime = line.split()
            clock[(name, event)] = float(uptime)
        except ValueError:
            raise ClockError(f"not a stage clock line: {line[:120]!r}") from None
        if name not in guest.STAGES or event not in ("start", "end"):
            raise ClockError(f"the guest's clock has {name} {event}, which guest.STAGES lacks")
    stages = []
    for name in guest.STAGES:
        start, end = clock.get((name, "start")), clock.get((name, "end"))
        if start is None or (end is None and name != guest.LAST_STAGE):
            raise ClockError(f"the guest's clock has no {'start' if start is None else 'end'} "
                             f"of stage {name}")  # fmt: skip
        duration = None if end is None else round(end - start, 3)
        stages.append(Stage(name, start, duration, True))
    return tuple(stages)


def qemu_version(qemu: str = "qemu-system-x86_64") -> str:
    """QEMU's version line: a guest's instruction count depends on it."""
    done = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[0].strip()


def conditions(qemu: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """What a guest-clock baseline was measured under: the QEMU, its icount
    settings, and the image's inputs (for the reader: a new image is what the
    gate compares)."""
    return {
        "clock": "guest",
        "qemu": qemu_version(qemu),
        "icount": ICOUNT,
        "image": {k: manifest.get(k) for k in ("cache_key", "kernel_version", "kubesolo")},
    }


def incomparable(baseline: dict[str, Any], now: dict[str, Any]) -> str | None:
    """One line when a baseline's numbers cannot be compared with this run's:
    another clock, another QEMU, other icount settings; else None."""
    old = {"clock": "wall", **baseline}  # a baseline that names no clock is a wall-clock one
    for key, what in (("clock", "clock"), ("qemu", "QEMU"), ("icount", "icount settings")):
        if old.get(key) != now.get(key):
            return (
                f"not run: the baseline was measured with {what} {old.get(key)!r}, "
                f"this run has {now.get(key)!r}: save a new baseline (timeline --save)"
            )
    return None
