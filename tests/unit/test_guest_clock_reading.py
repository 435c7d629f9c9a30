"""The boot-time gate on the guest's clock (docs/architecture.md "Boot-time
gate"): init's stage clock read back, the promised settings and thresholds,
a baseline's conditions, and what a guest-clock run compares."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness import guest
from harness.boottime import gate, guest_clock
from harness.vm import qemu
from harness.vm.qemu import QemuPlan

INIT = Path(__file__).resolve().parents[2] / "build/rootfs/sbin/init"
KERNEL_LINE = "[    3.404675] Run /init as init process"


def clock_text(skip: str = "") -> str:
    """READ_COMMAND's output for a boot whose stages each take 0.1 s."""
    lines, t = [KERNEL_LINE], 3.40
    for name in guest.STAGES:
        if name != guest.STAGES[0]:
            lines.append(f"{name} start {t:.2f}")
        if name != guest.LAST_STAGE:
            t += 0.1
            lines.append(f"{name} end {t:.2f}")
    return "\n".join(line for line in lines if line != skip) + "\n"


def test_the_promised_settings():
    assert (guest_clock.ICOUNT_SHIFT, guest_clock.ICOUNT) == (1, "shift=1,sleep=on")
    assert (gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS) == (0.03, 0.03)
    assert guest.STAGE_CLOCK_FILE == "/run/kubesolo-os/stage-clock"


def test_init_writes_its_stage_clock_where_the_harness_reads_it():
    init = INIT.read_text()
    assert f"STAGE_CLOCK={guest.STAGE_CLOCK_FILE}\n" in init
    assert 'stage_clock "$name" start' in init and 'stage_clock "$name" end' in init
    assert f"stage_clock {guest.LAST_STAGE} start" in init
    assert guest.STAGE_CLOCK_FILE in guest_clock.READ_COMMAND


def test_a_boot_reads_as_stages_on_the_guests_clock():
    stages = guest_clock.parse(clock_text())
    assert [s.name for s in stages] == list(guest.STAGES)
    assert stages[0].start == 3.404675  # the kernel ran init
    assert stages[0].duration == round(3.50 - 3.404675, 3)
    assert stages[1].start == 3.50 and stages[1].duration == 0.1
    assert stages[-1].duration is None
    record = gate.BootRecord("vm", True, stages)
    measures = record.measures()
    assert measures[gate.KERNEL] == 3.404675 and measures[gate.TOTAL] == stages[-1].start
    assert guest.LAST_STAGE not in measures  # it never ends: it runs KubeSolo


@pytest.mark.parametrize("missing", [KERNEL_LINE, "30-kernel-modules.sh end 3.80",
                                     "90-kubesolo.sh start 4.30"])  # fmt: skip
def test_a_missing_reading_is_one_line(missing):
    assert missing in clock_text()
    with pytest.raises(guest_clock.ClockError) as err:
        guest_clock.parse(clock_text(skip=missing))
    assert "\n" not in str(err.value)


def test_the_gates_boots_count_instructions_on_one_thread():
    plan = QemuPlan(accel="tcg", memory_mb=512, cpus=2, boot="kernel", kernel=Path("/k"),
                    initramfs=Path("/i"), icount_shift=1)  # fmt: skip
    cmd = qemu.command_line(plan)
    assert cmd[cmd.index("-icount") + 1] == guest_clock.ICOUNT
    assert cmd[cmd.index("-accel") + 1] == "tcg"  # icount cannot run multi-threaded TCG
    counted = gate.is_plain("", None, None, "kernel", icount_shift=1)
    assert not counted  # its wall time is not the session's


def test_a_guest_clock_baseline_records_its_conditions_and_spread(tmp_path):
    path = tmp_path / "b.json"
    records = [gate.BootRecord("vm", True, guest_clock.parse(clock_text())) for _ in range(3)]
    conditions = guest_clock.conditions("qemu-system-x86_64", {"cache_key": "k1"})
    gate.save_baseline(path, records, conditions)
    data = json.loads(path.read_text())
    assert data["clock"] == "guest" and data["icount"] == guest_clock.ICOUNT
    assert re.match(r"QEMU emulator version \d", data["qemu"])
    assert data["image"]["cache_key"] == "k1"
    assert data["spread"][gate.TOTAL] == [data["medians"][gate.TOTAL]] * 2
    assert gate.load_baseline(path, gate.GUEST) == data["medians"]
    with pytest.raises(
        gate.GateError, match="measured on the guest clock, compared here on the wall"
    ):
        gate.load_baseline(path)  # pytest's wall-clock gate refuses it in one line


@pytest.mark.parametrize(("key", "value", "says"), [
    ("qemu", "QEMU emulator version 8.2.2", "QEMU"),
    ("icount", "shift=2,sleep=on", "icount settings"),
    ("clock", "wall", "clock"),
])  # fmt: skip
def test_another_qemu_or_icount_is_one_line_not_numbers(key, value, says):
    now = {"clock": "guest", "qemu": "QEMU emulator version 7.2.22", "icount": guest_clock.ICOUNT}
    assert guest_clock.incomparable(now, now) is None
    why = guest_clock.incomparable({**now, key: value}, now)
    assert why.startswith(f"not run: the baseline was measured with {says} ") and "\n" not in why


def test_on_the_guests_clock_3_percent_and_30_ms_slower_fails_with_no_speed_factor():
    base = gate.BootRecord("vm", True, guest_clock.parse(clock_text())).measures()
    slow = {**base, "20-persistent-mount.sh": 0.14, "30-kernel-modules.sh": 0.12}
    records = []
    for _ in range(3):
        stages = tuple(
            s.__class__(s.name, s.start, slow.get(s.name, s.duration), True)
            for s in guest_clock.parse(clock_text())
        )
        records.append(gate.BootRecord("vm", True, stages))
    passed, lines = gate.verdict(
        records, base, gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS, gate.GUEST
    )
    assert not passed and "on the guest's clock" in lines[0]
    slower = [line.split(" |")[0][2:] for line in lines if line.endswith("SLOWER |")]
    assert slower == ["20-persistent-mount.sh"]  # +40 ms fails; +20 ms is under the floor


@pytest.mark.parametrize("line", ["garbage", "20-persistent-mount.sh start", "99-new.sh start 4.0",
                                  "20-persistent-mount.sh begun 4.0"])  # fmt: skip
def test_an_odd_clock_line_is_one_line(line):
    with pytest.raises(guest_clock.ClockError) as err:
        guest_clock.parse(clock_text() + line + "\n")
    assert "\n" not in str(err.value)


def test_one_step_of_the_guests_clock_at_the_floor_is_not_slower():
    """1.00 against 0.97 is 30 ms to the millisecond, not past a 30 ms floor."""
    assert (
        gate.compare({"s": 1.00}, {"s": 0.97}, gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS) == []
    )
    assert gate.compare({"s": 1.01}, {"s": 0.97}, gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS)


def test_the_guest_clock_chart_draws_no_bar_for_stage_90_which_never_ends():
    records = [gate.BootRecord("vm", True, guest_clock.parse(clock_text())) for _ in range(3)]
    names = [bar.label for bar in gate.median_bars(records)]
    assert names == [gate.KERNEL, *guest.STAGES[:-1]]
