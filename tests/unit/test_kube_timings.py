"""Phase timings: written as they happen, summarised per run, kept beside the artefacts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kube_fakes import FakeClock

from harness.k8s.timings import TIMINGS_FILE, PhaseTimer, format_timings, timings_file


class TestPhaseTimer:
    def test_phases_are_written_as_they_happen(self, tmp_path: Path) -> None:
        clock = FakeClock()
        path = tmp_path / TIMINGS_FILE
        timer = PhaseTimer(path, meta={"kubesolo_version": "v1.2.3"}, clock=clock)
        timer.begin("boot")
        clock.now += 12.5
        assert timer.mark("boot") == 12.5
        clock.now += 30
        timer.mark("api")
        first = json.loads(path.read_text())
        assert first == {
            "meta": {"kubesolo_version": "v1.2.3"},
            "runs": [{"run": "boot", "phases": {"boot": 12.5, "api": 42.5}}],
        }
        timer.begin("reboot-1")
        clock.now += 7
        timer.mark("boot")
        runs = json.loads(path.read_text())["runs"]
        assert runs[1] == {"run": "reboot-1", "phases": {"boot": 7.0}}

    def test_summary_lines_per_run(self) -> None:
        report = {
            "meta": {"kubesolo_version": "v1.2.3"},
            "runs": [
                {"run": "boot", "phases": {"boot": 20.04, "api": 95.5}},
                {"run": "reboot-1", "phases": {}},
            ],
        }
        assert format_timings(report) == [
            "KubeSolo v1.2.3, seconds from power-on or reboot:",
            "  boot: boot 20.0, api 95.5",
            "  reboot-1: (no phase reached)",
        ]

    def test_each_worker_keeps_its_own_file_beside_the_artefacts(self) -> None:
        assert timings_file("main") == TIMINGS_FILE == "k8s-timings.json"
        assert timings_file("gw1") == "k8s-timings-gw1.json"

    def test_mark_before_begin(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError):
            PhaseTimer(tmp_path / "t.json").mark("x")
