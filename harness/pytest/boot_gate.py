"""The boot-time gate in pytest (docs/architecture.md "Boot-time gate"):
every machine's boots are appended to `<artifacts>/timelines/<run>/` when
its test ends (xdist workers each to their own file); the controller then writes the
session's median boot chart (`boot-chart.svg`) and medians
(`boot-timeline.json`), and with `--timeline-baseline FILE` fails the run
with a table when a stage, the kernel or the total got slower."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.boottime import gate
from harness.boottime.chart import chart_svg
from harness.boottime.report import boot_report, report_lines
from harness.errors import UserError
from harness.private import write_shared
from harness.pytest import leftovers, snapshots
from harness.pytest.run_name import run_name
from harness.vm.protocols import Target

TIMELINES_DIR = "timelines"  # under --artifacts: a directory per run, a file per process
SUMMARY = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesolo")
    group.addoption(
        "--timeline-baseline",
        metavar="FILE",
        help="fail the run when the median boot got slower than this baseline "
        "(write one: kubesolo-harness timeline --save FILE)",
    )
    group.addoption(
        "--timeline-threshold",
        type=float,
        default=gate.DEFAULT_THRESHOLD,
        metavar="SHARE",
        help=f"slower by more than this share fails (default: {gate.DEFAULT_THRESHOLD})",
    )
    group.addoption(
        "--timeline-min-seconds",
        type=float,
        default=gate.DEFAULT_MIN_SECONDS,
        metavar="S",
        help=f"... and by more than this many seconds (default: {gate.DEFAULT_MIN_SECONDS})",
    )
    group.addoption(
        "--gate-runs",
        type=int,
        default=0,
        metavar="N",
        help="nightly: N runs of each proof of the guest-clock gate under a changing "
        "load (tests/harness/test_guest_clock.py; default 0: skipped)",
    )


def timelines_dir(config: pytest.Config) -> Path:
    """This run's timelines: another run in the same checkout has its own."""
    return Path(config.getoption("artifacts")).resolve() / TIMELINES_DIR / run_name(config)


def record_boots(machines: list[Target], directory: Path, owner: str = "") -> None:
    """Append every boot of `machines` (their test ended) to this process's file;
    `owner` names the test, or the worker's session, that booted them."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{os.getpid()}.jsonl").open("a") as out:
        for machine in machines:
            c = machine.config
            plain = gate.is_plain(c.kernel_args, c.base_cmdline, c.label, c.boot, c.icount_shift)
            for stages in machine.boot_timelines():
                record = gate.BootRecord(c.name, plain, tuple(stages), owner)
                out.write(json.dumps(record.to_json()) + "\n")


def read_boots(directory: Path) -> list[gate.BootRecord]:
    records = []
    for path in sorted(directory.glob("[0-9]*.jsonl")):  # restores-*.jsonl: snapshots.py
        for line in path.read_text().splitlines():
            if line.strip():
                records.append(gate.BootRecord.from_json(json.loads(line)))
    return records


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        return
    baseline = config.getoption("timeline_baseline")
    try:
        if baseline:
            gate.load_baseline(Path(baseline))  # a bad file is one line before anything boots
        if config.getoption("timeline_threshold") <= 0:
            raise UserError("--timeline-threshold: more than 0 (a share: 0.25 is 25 %)")
        if config.getoption("timeline_min_seconds") < 0:
            raise UserError("--timeline-min-seconds: at least 0")
    except UserError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_sessionstart(session: pytest.Session) -> None:
    """The controller makes the run's directory (workers start later) and
    removes it at the end; a killed run's goes with the next run's leftovers."""
    if not hasattr(session.config, "workerinput"):
        leftovers.make_owned_dir(timelines_dir(session.config))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput"):
        return
    directory = timelines_dir(config)
    records = read_boots(directory)
    restores = snapshots.read_restores(directory)
    shutil.rmtree(directory, ignore_errors=True)  # the report keeps what counts
    baseline = config.getoption("timeline_baseline")
    if not records and not restores and not baseline:
        return
    artifacts = Path(config.getoption("artifacts")).resolve()
    report = boot_report(records, restores)
    write_shared(artifacts / "boots.json", json.dumps(report, indent=2) + "\n")
    values, boots = gate.medians(records)
    lines = report_lines(report)
    lines.append(f"boot timeline: {len(records)} boots, {boots} complete plain boots")
    if boots:
        write_shared(
            artifacts / "boot-timeline.json",
            json.dumps({"boots": boots, "medians": values}, indent=2) + "\n",
        )
        title = f"median of {boots} plain boots (seconds after the first console byte)"
        write_shared(artifacts / "boot-chart.svg", chart_svg(title, gate.median_bars(records)))
        lines[-1] += f": medians in {artifacts / 'boot-timeline.json'}, chart boot-chart.svg"
    if baseline:
        passed, verdict = gate.verdict(
            records,
            gate.load_baseline(Path(baseline)),
            config.getoption("timeline_threshold"),
            config.getoption("timeline_min_seconds"),
        )
        lines += verdict
        if not passed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    config.stash[SUMMARY] = lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in terminalreporter.config.stash.get(SUMMARY, []):
        terminalreporter.write_line(line)
