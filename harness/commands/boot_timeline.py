"""`kubesolo-harness timeline`: boot the default machine N times from cold
and write the medians as a boot-time baseline (`--save FILE`), or check them
against one (`--compare FILE`); both draw the median boot chart
(docs/architecture.md "Boot-time gate"). By default the boots are timed on
the guest's own clock, counting instructions (harness.boottime.guest_clock);
`--clock wall` times them as they reach the host, as pytest's runs are."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from harness.artefact import Image
from harness.boottime import gate, guest_clock
from harness.boottime.chart import chart_svg
from harness.build.builder import BuildRequest, build
from harness.errors import UserError
from harness.log import logger
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine

log = logger("timeline")
THRESHOLDS = {  # clock -> (share, seconds): slower by both fails
    gate.WALL: (gate.DEFAULT_THRESHOLD, gate.DEFAULT_MIN_SECONDS),
    gate.GUEST: (gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS),
}


def boot_config(n: int, accel: str, clock: str) -> MachineConfig:
    if clock == gate.WALL:
        return MachineConfig(name=f"timeline-{n}", accel=accel)
    if accel == "kvm":
        raise UserError("the guest's clock counts instructions under TCG: use --accel tcg "
                        "(or auto), or --clock wall")  # fmt: skip
    return MachineConfig(name=f"timeline-{n}", accel="tcg", icount_shift=guest_clock.ICOUNT_SHIFT)


def plain_boots(
    boots: int, accel: str, clock: str = gate.GUEST, image: Image | None = None
) -> list[gate.BootRecord]:
    """`boots` cold boots of the default machine to stage 90, one at a time,
    each timed on `clock`."""
    image = image or build(BuildRequest(flavour="test"))
    records = []
    for n in range(1, boots + 1):
        config = boot_config(n, accel, clock)
        with tempfile.TemporaryDirectory() as tmp, Machine(image, config, run_dir=Path(tmp)) as vm:
            vm.start()
            vm.wait_for_boot()
            if clock == gate.GUEST:
                stages = guest_clock.parse(vm.succeed(guest_clock.READ_COMMAND))
            else:
                stages = tuple(vm.stage_timeline())
        record = gate.BootRecord(config.name, plain=True, stages=stages)
        log.info("boot %d/%d: stage 90 after %.2fs (%s clock)", n, boots,
                 record.measures()[gate.TOTAL], clock)  # fmt: skip
        records.append(record)
    return records


def conditions(clock: str, image: Image) -> dict[str, Any]:
    """What a baseline on `clock` is measured under."""
    if clock == gate.WALL:
        return {"clock": gate.WALL}
    return guest_clock.conditions("qemu-system-x86_64", image.manifest)


def main_timeline(
    boots: int,
    accel: str,
    save: str | None,
    compare_with: str | None,
    threshold: float | None,
    min_seconds: float | None,
    chart: str,
    clock: str = gate.GUEST,
) -> int:
    image = build(BuildRequest(flavour="test"))
    now = conditions(clock, image)
    if compare_with:
        baseline_file = gate.load_baseline_file(Path(compare_with))
        baseline = gate.load_baseline(Path(compare_with), clock)
        if clock == gate.GUEST and (why := guest_clock.incomparable(baseline_file, now)):
            raise gate.GateError(f"boot-time gate: {why}")
    records = plain_boots(boots, accel, clock, image)
    values, count = gate.medians(records)
    Path(chart).write_text(
        chart_svg(f"median of {count} boots ({clock} clock)", gate.median_bars(records))
    )
    print(f"boot chart: {chart}")
    if save:
        gate.save_baseline(Path(save), records, now)
        print(f"baseline of {count} boots on the {clock} clock written to {save}")
        for name, seconds in values.items():
            print(f"| {name} | {seconds:.2f} |")
    if not compare_with:
        return 0
    share, seconds = THRESHOLDS[clock]
    passed, lines = gate.verdict(
        records, baseline, share if threshold is None else threshold,
        seconds if min_seconds is None else min_seconds, clock,
    )  # fmt: skip
    print("\n".join(lines))
    return 0 if passed else 1
