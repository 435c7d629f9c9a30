"""`kubesolo-harness timeline`: boot the default machine N times from cold
and write the medians as a boot-time baseline (`--save FILE`), or check them
against one (`--compare FILE`); both draw the median boot chart
(docs/architecture.md "Boot-time gate")."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.build.builder import BuildRequest, build
from harness.log import logger
from harness.vm import boot_gate as gate
from harness.vm.boot_chart import chart_svg
from harness.vm.machine import Machine, MachineConfig

log = logger("timeline")


def plain_boots(boots: int, accel: str) -> list[gate.BootRecord]:
    """`boots` cold boots of the default machine to stage 90, one at a time."""
    image = build(BuildRequest(flavour="test"))
    records = []
    for n in range(1, boots + 1):
        with tempfile.TemporaryDirectory() as tmp:
            config = MachineConfig(name=f"timeline-{n}", accel=accel)
            with Machine(image, config, run_dir=Path(tmp)) as vm:
                vm.start()
                vm.wait_for_boot()
                stages = tuple(vm.stage_timeline())
        record = gate.BootRecord(config.name, plain=True, stages=stages)
        log.info("boot %d/%d: stage 90 after %.2fs", n, boots, record.measures()[gate.TOTAL])
        records.append(record)
    return records


def main_timeline(
    boots: int,
    accel: str,
    save: str | None,
    compare_with: str | None,
    threshold: float,
    min_seconds: float,
    chart: str,
) -> int:
    baseline = gate.load_baseline(Path(compare_with)) if compare_with else None
    records = plain_boots(boots, accel)
    values, count = gate.medians(records)
    Path(chart).write_text(chart_svg(f"median of {count} boots", gate.median_bars(records)))
    print(f"boot chart: {chart}")
    if save:
        gate.save_baseline(Path(save), records)
        print(f"baseline of {count} boots written to {save}")
        for name, seconds in values.items():
            print(f"| {name} | {seconds:.2f} |")
    if baseline is None:
        return 0
    passed, lines = gate.verdict(records, baseline, threshold, min_seconds)
    print("\n".join(lines))
    return 0 if passed else 1
