"""Booted machines shared through snapshots by every xdist worker of a run
(docs/architecture.md "Snapshots"): the first worker that asks for a booted
state boots it and saves it, under a file lock; any later ask, from any
worker, restores it in about a second. `--no-snapshots` boots every machine
cold; a test marked `cold_boot` gets a cold-booted `machine`."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from harness.artefact import Image
from harness.errors import HarnessError
from harness.log import logger
from harness.pytest import leftovers
from harness.vm.machine import Machine, MachineConfig
from harness.vm.snapshot import Snapshot, snapshot_key
from harness.vm.target import Target

RUN_ENV = "KUBESOLO_SNAPSHOT_RUN"  # the controller's run name, inherited by its workers
SNAPSHOTS_DIR = "snapshots"  # under --artifacts: one directory per run
RESTORES_FILE = "restores-{pid}.jsonl"  # beside the boot timelines
log = logger("snapshots")

Up = Callable[[Target], None]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesolo")
    group.addoption(
        "--no-snapshots",
        action="store_true",
        help="boot every machine cold: no booted state is saved or restored",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cold_boot: the `machine` fixture boots this test's machine cold"
    )
    if not hasattr(config, "workerinput"):  # the controller names the run for its workers
        os.environ[RUN_ENV] = f"run-{os.getpid()}"


def run_dir(artifacts: Path) -> Path:
    return artifacts / SNAPSHOTS_DIR / os.environ.get(RUN_ENV, f"run-{os.getpid()}")


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        directory = run_dir(Path(session.config.getoption("artifacts")).resolve())
        directory.mkdir(parents=True, exist_ok=True)
        leftovers.mark_owner(directory)  # a killed run's snapshots go with its leftovers


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(run_dir(Path(session.config.getoption("artifacts")).resolve()), True)


def config_settings(config: MachineConfig) -> dict[str, Any]:
    """What a booted state depends on: every setting but the machine's name; a
    data disk given as a file is named by the caller's `extra` instead."""
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "name"}
    if not isinstance(config.data_disk, bool):
        settings["data_disk"] = "a file"
    return settings


class SnapshotStore:
    """The run's snapshots, keyed by image and machine settings."""

    def __init__(self, directory: Path | None, image: Image, records: Path) -> None:
        self.directory = directory  # None: snapshots are off
        self.image = image
        self.records = records

    def booted(
        self,
        make: Callable[..., Target],
        settings: dict[str, Any],
        up: Up,
        extra: str = "",
        owner: str = "",
    ) -> Target:
        """A machine of `settings` (MachineConfig fields) brought `up`: restored
        when this run saved that state already, else started, brought up and
        saved. `extra` names what the settings do not (a preseeded disk)."""
        vm = make(**settings)
        if self.directory is None or not isinstance(vm, Machine) or vm.config.boot != "kernel":
            vm.start()
            up(vm)
            return vm
        key = snapshot_key(self.image.path.name, config_settings(vm.config), extra)
        snap = Snapshot(self.directory / key)
        with FileLock(str(self.directory / f"{key}.lock")):
            if snap.complete:
                try:
                    vm.restore(snap)
                except HarnessError as err:
                    raise HarnessError(f"{err} (run with --no-snapshots to boot cold)") from err
                self._record(vm, owner)
                return vm
            vm.start()
            up(vm)
            vm.save_snapshot(snap.directory)
        return vm

    def _record(self, vm: Machine, owner: str) -> None:
        self.records.mkdir(parents=True, exist_ok=True)
        line = {"machine": vm.config.name, "seconds": vm.restored_in, "owner": owner}
        with (self.records / RESTORES_FILE.format(pid=os.getpid())).open("a") as out:
            out.write(json.dumps(line) + "\n")


def read_restores(directory: Path) -> list[dict[str, Any]]:
    restores = []
    for path in sorted(directory.glob(RESTORES_FILE.format(pid="*"))):
        restores += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return restores
