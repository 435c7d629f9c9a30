"""`kubesolo-harness soak N`: run the boot and persistence suites N times under
`pytest -n auto` and print each test's failure count and rate, so that a flake
is a number, not a memory. Each run's JUnit XML and failure records stay under
artifacts/soak/run-K/ for the post-mortem."""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.log import logger

DEFAULT_SUITES = ("tests/boot", "tests/persistence")
log = logger("soak")


@dataclass(frozen=True)
class SoakReport:
    runs: int
    tests: int  # distinct tests seen
    failures: dict[str, int]  # test id -> runs in which it failed or errored
    seconds: list[float]

    def lines(self) -> list[str]:
        total = sum(self.failures.values())
        rate = total / max(1, self.runs * self.tests)
        walls = ", ".join(f"{s:.0f}s" for s in self.seconds)
        out = [
            f"soak: {self.runs} runs of {self.tests} tests, {total} failures "
            f"({rate:.2%} of test runs); run wall times {walls}"
        ]
        if self.failures:
            out.append("| test | failed runs | rate |")
            out.append("|---|---|---|")
            for test, count in sorted(self.failures.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"| {test} | {count}/{self.runs} | {count / self.runs:.0%} |")
        return out


def outcomes(junit_xml: str) -> dict[str, str]:
    """test id -> passed | failed | skipped, from one JUnit XML report."""
    root = ET.fromstring(junit_xml)
    found = {}
    for case in root.iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = {child.tag for child in case}
        if kinds & {"failure", "error"}:
            found[test] = "failed"
        elif "skipped" in kinds:
            found[test] = found.get(test, "skipped")
        else:
            found.setdefault(test, "passed")
    return found


def aggregate(reports: list[dict[str, str]], seconds: list[float]) -> SoakReport:
    """Failure counts per test over the runs (a run that never wrote its XML
    counts as one failure of the pseudo-test `<run>`)."""
    failures: Counter[str] = Counter()
    tests: set[str] = set()
    for report in reports:
        if not report:
            failures["<run: no report>"] += 1
        tests |= set(report)
        failures.update(test for test, outcome in report.items() if outcome == "failed")
    return SoakReport(len(reports), len(tests), dict(failures), seconds)


def main_soak(runs: int, pytest_args: list[str], artifacts: Path = Path("artifacts")) -> int:
    """Run the suites `runs` times; exit 1 if any test failed in any run."""
    reports, seconds = [], []
    for run in range(1, runs + 1):
        directory = (artifacts / "soak" / f"run-{run}").resolve()
        directory.mkdir(parents=True, exist_ok=True)
        junit = directory / "junit.xml"
        junit.unlink(missing_ok=True)
        args = pytest_args or list(DEFAULT_SUITES)
        command = [sys.executable, "-m", "pytest", "-n", "auto", "-p", "no:cacheprovider", "-q"]
        command += [f"--junitxml={junit}", f"--artifacts={directory}", *args]
        started = time.monotonic()
        done = subprocess.run(command, check=False)
        seconds.append(time.monotonic() - started)
        report = outcomes(junit.read_text()) if junit.exists() else {}
        reports.append(report)
        failed = sum(1 for outcome in report.values() if outcome == "failed")
        log.info("soak run %d/%d: exit %d, %d failed", run, runs, done.returncode, failed)
    summary = aggregate(reports, seconds)
    for line in summary.lines():
        print(line)
    return 1 if summary.failures else 0
