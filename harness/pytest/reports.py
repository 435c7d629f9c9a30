"""What a failing test leaves (docs/architecture.md "pytest plugins"): the
console tails and artefact paths of the machines it used, in its report and
in a file written the moment it fails; and the run's closing lines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.private import share
from harness.pytest.options import Settings, run_dir_name
from harness.pytest.shared_nodes import SharedNodes
from harness.vm import accel
from harness.vm.protocols import Target
from harness.vm.relay import RemoteMachine

MACHINES = pytest.StashKey[list[Target]]()  # machines of a test, for its report
ACTIVITY = pytest.StashKey[dict[int, int]]()  # machine id -> its activity when the test began
FAILURES_DIR = "failures"  # under --artifacts: one text file per failing test phase


@dataclass
class SharedState:
    """A worker's shared nodes and the machines it brought up for them."""

    nodes: SharedNodes
    machines: list[Target]
    prefix: str
    settings: Settings


SHARED = pytest.StashKey[SharedState]()


def used_machines(item: pytest.Item) -> list[Target | RemoteMachine]:
    """The test's own machines, and the shared ones it acted on (their activity
    grew since it began): a failure report shows their consoles, no others."""
    before = item.stash.get(ACTIVITY, {})
    shared = [m for m in session_machines(item.session) if m.activity > before.get(id(m), 0)]
    return [*item.stash.get(MACHINES, []), *shared]


def session_machines(session: pytest.Session) -> list[Target | RemoteMachine]:
    """The machines of the session's fixtures, and the shared nodes this worker drives."""
    state = session.stash.get(SHARED, None)
    return [*session.stash.get(MACHINES, []), *(state.nodes.remotes if state else [])]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    item.stash[ACTIVITY] = {id(m): m.activity for m in session_machines(item.session)}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    if report.failed:
        for machine in used_machines(item):
            report.sections.append(
                (f"console of {machine.config.name} (last 40 lines)", machine.console.tail(40))
            )
            report.sections.append((f"artefacts of {machine.config.name}", str(machine.run_dir)))
        record_failure(report, Settings.from_config(item.config).artifacts / FAILURES_DIR)
    return report


def record_failure(report: pytest.TestReport, directory: Path) -> Path:
    """Write a failing report, with its sections (console tails), to a file the
    moment it is made: `-x`, a crash of the controller or a lost terminal cannot
    lose the failure text of a flaky test."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_dir_name(report.nodeid)}-{report.when}.txt"
    sections = "".join(f"\n--- {title} ---\n{text}\n" for title, text in report.sections)
    path.write_text(f"{report.nodeid} ({report.when})\n{report.longreprtext}\n{sections}")
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    verdict = accel.cached_verdict()
    if verdict:
        terminalreporter.write_line(
            f"kubesolo-harness: accelerator {verdict.accel}: {verdict.reason}"
        )


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The JUnit report is shared on purpose (pytest wrote it at the session's end); its
    directory is the user's choice (--junitxml ~/r.xml) and keeps its mode."""
    xml = getattr(config.option, "xmlpath", None)
    if xml and not hasattr(config, "workerinput") and Path(xml).is_file():
        share(Path(xml))
