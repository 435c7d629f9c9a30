"""The boot-time gate (docs/architecture.md "Boot-time gate"): every boot's
stage timeline is recorded; a session's median per stage, the kernel's time
and the total are compared with a stored baseline, and a stage that got
slower by more than a share *and* more than a number of seconds fails the
run. Medians over many boots, the absolute floor and the machine's speed
factor (a busier machine slows every stage alike) keep a noisy 2-core TCG
machine from failing it by chance."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import guest
from harness.boottime.chart import Bar
from harness.boottime.timeline import Stage
from harness.errors import UserError

KERNEL = "kernel"  # first console byte -> stage 00 starts (kernel and its drivers)
TOTAL = "total"  # first console byte -> the last stage starts (KubeSolo is exec'd next)
DEFAULT_THRESHOLD = 0.25  # 25 % slower fails ...
DEFAULT_MIN_SECONDS = 0.5  # ... if it is also this much slower
# On the guest's clock (harness.boottime.guest_clock), which the host's load does not
# move: 3 % slower and 30 ms slower fails, below the 5 % or 50 ms it must
# catch by more than the measured spread (docs/architecture.md "Boot-time gate").
GUEST_THRESHOLD = 0.03
GUEST_MIN_SECONDS = 0.03
WALL, GUEST = "wall", "guest"  # the clocks a baseline can be on
MIN_BOOTS = 3  # fewer plain boots than this: no medians worth comparing
FACTOR_FLOOR = 0.3  # seconds: shorter measures are too noisy to tell the machine's speed


class GateError(UserError):
    """The gate cannot compare: no baseline, a bad one, or too few boots."""


@dataclass(frozen=True)
class BootRecord:
    """One boot's timeline, and whether it was a plain boot: the default
    label's line, kernel boot, nothing added. Only plain boots are compared:
    the suites' other boots trace, fail or wait on purpose."""

    machine: str
    plain: bool
    stages: tuple[Stage, ...]
    owner: str = ""  # the test (node id) or the worker's session that booted it

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "plain": self.plain,
            "stages": [s.__dict__ for s in self.stages],
            "owner": self.owner,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BootRecord:
        stages = tuple(Stage(**s) for s in data["stages"])
        return cls(data["machine"], data["plain"], stages, data.get("owner", ""))

    @property
    def seconds(self) -> float:
        """First console byte to the end of the last stage it reached (0: none)."""
        if not self.stages:
            return 0.0
        last = self.stages[-1]
        return round(last.start + (last.duration or 0.0), 3)

    @property
    def complete(self) -> bool:
        """Every stage ran, in order, and each finished OK (stage 90 included)."""
        names = [s.name for s in self.stages]
        return names == list(guest.STAGES) and all(s.ok for s in self.stages)

    def measures(self) -> dict[str, float]:
        """Seconds per stage that finished (on the guest's clock stage 90
        never does: it runs KubeSolo), the kernel's time and the total."""
        found = {s.name: s.duration for s in self.stages if s.duration is not None}
        found[KERNEL] = self.stages[0].start
        found[TOTAL] = self.stages[-1].start
        return found


def is_plain(
    kernel_args: str,
    base_cmdline: str | None,
    label: str | None,
    boot: str,
    icount_shift: int | None = None,
) -> bool:
    """A boot whose wall-clock timeline the session's medians may take: not one
    counting instructions, which runs slower on the host by design."""
    return (
        icount_shift is None
        and not kernel_args
        and base_cmdline is None
        and label in (None, guest.DEFAULT_LABEL)
        and boot == "kernel"
    )


def medians(records: list[BootRecord]) -> tuple[dict[str, float], int]:
    """(median seconds per measure, the number of boots) over complete plain boots."""
    usable = [r.measures() for r in records if r.plain and r.complete]
    if not usable:
        return {}, 0
    keys = usable[0].keys()
    return {k: round(statistics.median(m[k] for m in usable), 3) for k in keys}, len(usable)


def median_bars(records: list[BootRecord]) -> list[Bar]:
    """The chart of the median boot: the kernel, then each stage at its median start."""
    usable = [r for r in records if r.plain and r.complete]
    if not usable:
        return []
    bars = [Bar(KERNEL, 0.0, statistics.median(r.stages[0].start for r in usable), "kernel")]
    for i, name in enumerate(guest.STAGES):
        durations = [d for r in usable if (d := r.stages[i].duration) is not None]
        if not durations:  # on the guest's clock stage 90 never ends: it runs KubeSolo
            continue
        start = statistics.median(r.stages[i].start for r in usable)
        bars.append(Bar(name, start, statistics.median(durations)))
    return bars


def boot_bars(stages: list[Stage] | tuple[Stage, ...]) -> list[Bar]:
    """The chart of one boot, as far as it came."""
    if not stages:
        return []
    bars = [Bar(KERNEL, 0.0, stages[0].start, "kernel")]
    for s in stages:
        kind = "ok" if s.ok else ("open" if s.duration is None else "failed")
        bars.append(Bar(s.name, s.start, s.duration or 0.0, kind))
    return bars


@dataclass(frozen=True)
class Slower:
    measure: str
    baseline: float
    now: float

    @property
    def change(self) -> float:
        return self.now / self.baseline - 1 if self.baseline else float("inf")


def speed_factor(now: dict[str, float], baseline: dict[str, float]) -> float:
    """How much slower this run's machine ran than the baseline's, as a whole:
    the median ratio over the kernel and the stages of at least FACTOR_FLOOR
    seconds. A busier machine slows them all alike; a regression slows one,
    which does not move a median."""
    ratios = [
        now[k] / baseline[k]
        for k in baseline
        if k in now and k != TOTAL and baseline[k] >= FACTOR_FLOOR
    ]
    return statistics.median(ratios) if ratios else 1.0


def compare(
    now: dict[str, float],
    baseline: dict[str, float],
    threshold: float = DEFAULT_THRESHOLD,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    factor: float = 1.0,
) -> list[Slower]:
    """The measures more than `threshold` and more than `min_seconds` slower
    than the baseline scaled by the machine's speed `factor`."""
    return [
        Slower(k, baseline[k] * factor, now[k])
        for k in baseline
        if k in now  # to the millisecond: 1.00 - 0.97 is 0.03, not 0.030000000000000027
        and round(now[k] - baseline[k] * factor, 3) > min_seconds
        and round(now[k], 3) > round(baseline[k] * factor * (1 + threshold), 3)
    ]


def table(
    now: dict[str, float], baseline: dict[str, float], slower: list[Slower], factor: float = 1.0
) -> list[str]:
    """A Markdown table of every measure: baseline, expected (the baseline
    at this run's speed), now, change from expected, verdict."""
    bad = {s.measure for s in slower}
    lines = [
        "| measure | baseline (s) | expected (s) | now (s) | change | |",
        "|---|---|---|---|---|---|",
    ]
    for k in baseline:
        if k in now:
            expected = baseline[k] * factor
            change = f"{(now[k] / expected - 1):+.0%}" if expected else "n/a"
            mark = "SLOWER" if k in bad else "ok"
            lines.append(
                f"| {k} | {baseline[k]:.2f} | {expected:.2f} | {now[k]:.2f} | {change} | {mark} |"
            )
    return lines


def save_baseline(
    path: Path, records: list[BootRecord], conditions: dict[str, Any] | None = None
) -> dict[str, float]:
    """Write the medians of `records` as a baseline, with each measure's
    spread (min, max) and what it was measured under (`conditions`: the
    clock, QEMU, ...); refuse too few boots."""
    values, boots = medians(records)
    if boots < MIN_BOOTS:
        raise GateError(f"a baseline needs at least {MIN_BOOTS} complete plain boots, got {boots}")
    usable = [r.measures() for r in records if r.plain and r.complete]
    spread = {k: [min(m[k] for m in usable), max(m[k] for m in usable)] for k in values}
    data = {**(conditions or {}), "boots": boots, "medians": values, "spread": spread}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return values


def load_baseline_file(path: Path) -> dict[str, Any]:
    """A baseline file's whole content, or one line saying what is wrong with it."""
    try:
        data = json.loads(path.read_text())
        data["medians"] = {str(k): float(v) for k, v in data["medians"].items()}
    except FileNotFoundError:
        raise GateError(
            f"timeline baseline {path}: no such file "
            f"(write one: kubesolo-harness timeline --save {path})"
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise GateError(
            f"timeline baseline {path}: not a baseline file ({type(err).__name__}: {err})"
        ) from None
    if not data["medians"]:
        raise GateError(f"timeline baseline {path}: it holds no medians")
    return data


def load_baseline(path: Path, clock: str = WALL) -> dict[str, float]:
    """The medians of a baseline on `clock` (a file without one is on the wall
    clock), or one line saying what is wrong with it."""
    data = load_baseline_file(path)
    if data.get("clock", WALL) != clock:
        raise GateError(
            f"timeline baseline {path}: measured on the {data.get('clock', WALL)} clock, "
            f"compared here on the {clock} clock (kubesolo-harness timeline --clock)"
        )
    return dict(data["medians"])


def verdict(
    records: list[BootRecord],
    baseline: dict[str, float],
    threshold: float,
    min_seconds: float,
    clock: str = WALL,
) -> tuple[bool, list[str]]:
    """(passed, the lines to print) for a session's boots against a baseline.
    On the wall clock the baseline is scaled by the machine's speed factor; on
    the guest's, which the host's load does not move, it is not."""
    now, boots = medians(records)
    if boots < MIN_BOOTS:
        return False, [
            f"boot-time gate: {boots} complete plain boots in this run, "
            f"at least {MIN_BOOTS} needed: not compared"
        ]
    factor = speed_factor(now, baseline) if clock == WALL else 1.0
    slower = compare(now, baseline, threshold, min_seconds, factor)
    rule = f"slower by more than {threshold:.0%} and {min_seconds:g}s fails"
    against = (
        f"which this machine ran at {factor:.2f}x its time ({rule})"
        if clock == WALL
        else f"on the guest's clock ({rule})"
    )
    head = f"boot-time gate: medians of {boots} plain boots against the baseline, {against}: " + (
        "FAILED" if slower else "passed"
    )
    return not slower, [head, *table(now, baseline, slower, factor)]
