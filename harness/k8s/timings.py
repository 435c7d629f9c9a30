"""Phase timings of a node's boots: seconds from power-on (or a reboot) to each
phase, the figures users compare between KubeSolo releases."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.log import logger

log = logger("k8s")
TIMINGS_FILE = "k8s-timings.json"


def timings_file(worker: str) -> str:
    """The name of a run's timings under --artifacts: one file per xdist worker."""
    return TIMINGS_FILE if worker == "main" else f"k8s-timings-{worker}.json"


@dataclass
class PhaseTimer:
    """Seconds from a run's start (boot or reboot) to each phase, rewritten after every
    mark, so a failed run keeps whatever phases it reached."""

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    runs: list[dict[str, Any]] = field(default_factory=list)
    _started: float = 0.0

    def begin(self, run: str) -> None:
        self._started = self.clock()
        self.runs.append({"run": run, "phases": {}})
        self._write()

    def mark(self, phase: str) -> float:
        if not self.runs:
            raise RuntimeError("PhaseTimer.mark before begin")
        elapsed = round(self.clock() - self._started, 3)
        self.runs[-1]["phases"][phase] = elapsed
        log.info("k8s phase %s: %.1fs", phase, elapsed)
        self._write()
        return elapsed

    def report(self) -> dict[str, Any]:
        return {"meta": self.meta, "runs": self.runs}

    def _write(self) -> None:
        self.path.write_text(json.dumps(self.report(), indent=2) + "\n", encoding="utf-8")


def format_timings(report: Mapping[str, Any]) -> list[str]:
    """One line per run (boot, reboot-1, ...) for the terminal summary."""
    version = (report.get("meta") or {}).get("kubesolo_version") or "unknown version"
    lines = [f"KubeSolo {version}, seconds from power-on or reboot:"]
    for run in report.get("runs", []):
        phases = ", ".join(f"{name} {secs:.1f}" for name, secs in run["phases"].items())
        lines.append(f"  {run['run']}: {phases or '(no phase reached)'}")
    return lines
