"""Every boot of a machine is timed and drawn (docs/architecture.md
"Boot-time gate"): a boot and a reboot give two complete timelines, and the
run directory gets them as JSON and the last one as an SVG boot chart."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness import guest
from harness.boottime import gate

pytestmark = pytest.mark.boot


def test_a_boot_and_a_reboot_are_two_timelines_and_a_chart(machine_factory):
    vm = machine_factory()
    vm.start()
    vm.wait_for_boot()
    vm.reboot()
    vm.wait_for_boot()
    boots = vm.boot_timelines()
    assert len(boots) == 2
    c = vm.config
    assert gate.is_plain(c.kernel_args, c.base_cmdline, c.label, c.boot)
    for stages in boots:
        record = gate.BootRecord(c.name, True, tuple(stages))
        assert record.complete, stages
        assert 0 < record.measures()[gate.KERNEL] < record.measures()[gate.TOTAL]
    run_dir = vm.save_artifacts()
    saved = json.loads((run_dir / "boot-timelines.json").read_text())
    assert [[s["name"] for s in boot] for boot in saved] == [list(guest.STAGES)] * 2
    chart = ET.fromstring((run_dir / "boot-chart.svg").read_text())
    titles = [t.text for t in chart.iter("{http://www.w3.org/2000/svg}title")]
    assert [t.split(":")[0] for t in titles] == [gate.KERNEL, *guest.STAGES]
