"""Where a run's boot time went (docs/architecture.md "Boot-time gate"): the
count, the seconds, the slowest boots and who booted them."""

from __future__ import annotations

from harness.boottime.gate import BootRecord
from harness.boottime.report import boot_report, report_lines
from harness.boottime.timeline import Stage


def record(owner: str, *ends: float) -> BootRecord:
    stages = tuple(Stage(f"{i}0-s.sh", start, 0.5, True) for i, start in enumerate(ends))
    return BootRecord("vm0", True, stages, owner)


def test_seconds_run_to_the_end_of_the_last_stage():
    assert record("t", 1.0, 4.0).seconds == 4.5
    assert BootRecord("vm0", False, ()).seconds == 0.0
    open_stage = BootRecord("vm0", False, (Stage("00-early-mount.sh", 2.0, None, False),))
    assert open_stage.seconds == 2.0


def test_report_counts_and_ranks():
    records = [record("a", 1.5), record("b", 9.0), record("c", 3.0), BootRecord("vm1", False, ())]
    report = boot_report(records, slowest=2)
    assert report["boots"] == 4 and report["boot_seconds"] == 15.0
    assert report["restores"] == 0
    assert [s["owner"] for s in report["slowest"]] == ["b", "c"]
    assert report_lines(report) == [
        "boots: 4 booted cold, 15s from their first console byte to their last stage; "
        "0 restored from snapshots in 0s",
        "     9.5s b (vm0), up to 00-s.sh",
        "     3.5s c (vm0), up to 00-s.sh",
    ]


def test_records_keep_their_owner_through_json():
    original = record("tests/x.py::test_y", 2.0)
    assert BootRecord.from_json(original.to_json()) == original
    legacy = {k: v for k, v in original.to_json().items() if k != "owner"}
    assert BootRecord.from_json(legacy).owner == ""


def test_restores_are_counted_beside_the_boots():
    restores = [
        {"machine": "default", "seconds": 0.8, "owner": "scenario default"},
        {"machine": "vm0", "seconds": 1.1, "owner": "tests/x.py::test_y"},
    ]
    report = boot_report([record("a", 1.5)], restores)
    assert (report["restores"], report["restore_seconds"]) == (2, 1.9)
    assert report_lines(report)[0].endswith("; 2 restored from snapshots in 2s")
