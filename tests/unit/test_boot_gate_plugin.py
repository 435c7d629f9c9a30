"""The boot-time gate in pytest runs of its own (docs/architecture.md
"Boot-time gate"): the session's boots give a median chart and medians, a
baseline that the run is slower than fails it with a table, and a bad
baseline or option is one line before anything runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

STAGES = [
    "00-early-mount.sh", "10-parse-cmdline.sh", "20-persistent-mount.sh", "30-kernel-modules.sh",
    "40-sysctl.sh", "50-network.sh", "60-hostname.sh", "70-clock.sh", "80-containerd.sh",
    "90-kubesolo.sh",
]  # fmt: skip
TESTS = """
import json, os
from pathlib import Path

def test_boots():
    (directory,) = Path("artifacts/timelines").glob("run-*")  # this run's, made at its start
    with (directory / f"{os.getpid()}.jsonl").open("a") as out:
        for line in LINES:
            out.write(line + "\\n")
"""


def records(sysctl_seconds: float, boots: int = 3) -> list[str]:
    lines = []
    for _ in range(boots):
        stages, t = [], 1.0
        for name in STAGES:
            duration = sysctl_seconds if name == "40-sysctl.sh" else 0.5
            stages.append({"name": name, "start": t, "duration": duration, "ok": True})
            t += duration
        lines.append(json.dumps({"machine": "vm0", "plain": True, "stages": stages}))
    return lines


def run(pytester: pytest.Pytester, lines: list[str], *args: str) -> pytest.RunResult:
    pytester.makepyfile(TESTS.replace("LINES", repr(lines)))
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


def baseline(pytester: pytest.Pytester, sysctl_seconds: float) -> Path:
    path = pytester.path / "baseline.json"
    medians = {name: 0.5 for name in STAGES} | {"40-sysctl.sh": sysctl_seconds}
    medians |= {"kernel": 1.0, "total": 1.0 + sum(list(medians.values())[:9])}
    path.write_text(json.dumps({"boots": 3, "medians": medians}))
    return path


def test_the_session_chart_and_medians_are_written(pytester: pytest.Pytester) -> None:
    result = run(pytester, records(0.5))
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "boots: 3 booted cold, *s from their first console byte to their last stage; "
            "0 restored from snapshots in 0s",
            "*s vm0, up to 90-kubesolo.sh",
            "boot timeline: 3 boots, 3 complete plain boots: medians in *",
        ]
    )
    boots = json.loads((pytester.path / "artifacts" / "boots.json").read_text())
    assert boots["boots"] == 3 and len(boots["slowest"]) == 3
    medians = json.loads((pytester.path / "artifacts" / "boot-timeline.json").read_text())
    assert medians["boots"] == 3 and medians["medians"]["total"] == 5.5
    assert (pytester.path / "artifacts" / "boot-chart.svg").read_text().startswith("<svg")


def test_a_run_reports_its_own_boots_and_leaves_a_live_runs_alone(
    pytester: pytest.Pytester,
) -> None:
    """Two runs in one checkout (a unit run during a VM run): each reports its
    own boots, and neither removes the timelines of the other while it lives;
    a run removes its own once its report is written."""
    other = pytester.path / "artifacts" / "timelines" / "other"
    other.mkdir(parents=True)
    (other / "owner").write_text(f"{os.getpid()}\n")  # alive: this process
    (other / "1.jsonl").write_text("\n".join(records(0.5, boots=5)) + "\n")
    result = run(pytester, records(0.5, boots=2))
    result.stdout.fnmatch_lines(["boots: 2 booted cold, *"])
    assert len((other / "1.jsonl").read_text().splitlines()) == 5
    assert [d.name for d in other.parent.iterdir()] == ["other"]  # its own: read, then gone


def test_a_slowed_stage_fails_the_run_with_a_table(pytester: pytest.Pytester) -> None:
    result = run(pytester, records(2.5), "--timeline-baseline", str(baseline(pytester, 0.5)))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([
        "boot-time gate: medians of 3 plain boots against the baseline, which this machine "
        "ran at 1.00x its time *: FAILED",
        "| 40-sysctl.sh | 0.50 | 0.50 | 2.50 | +400% | SLOWER |",
        "| total | 5.50 | 5.50 | 7.50 | +36% | SLOWER |",
    ])  # fmt: skip


def test_an_unchanged_run_passes_the_gate(pytester: pytest.Pytester) -> None:
    result = run(pytester, records(0.5), "--timeline-baseline", str(baseline(pytester, 0.5)))
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["boot-time gate: * passed"])


def test_a_run_without_boots_cannot_pass_the_gate(pytester: pytest.Pytester) -> None:
    result = run(pytester, [], "--timeline-baseline", str(baseline(pytester, 0.5)))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["boot-time gate: 0 complete plain boots in this run, *"])


@pytest.mark.parametrize(("args", "error"), [
    (["--timeline-baseline", "nope.json"], "ERROR: timeline baseline nope.json: no such file *"),
    (["--timeline-threshold", "0"], "ERROR: --timeline-threshold: more than 0 *"),
    (["--timeline-min-seconds", "-1"], "ERROR: --timeline-min-seconds: at least 0"),
])  # fmt: skip
def test_bad_gate_options_are_one_line(pytester: pytest.Pytester, args, error) -> None:
    result = run(pytester, [], *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([error])
    assert "Traceback" not in result.stderr.str()
