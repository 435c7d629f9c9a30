"""Booted machines shared through snapshots by every xdist worker of a run
(docs/architecture.md "Snapshots"): the first worker that asks for a booted
state boots it and saves it, under a file lock; any later ask, from any
worker, restores it in about a second. `--no-snapshots` boots every machine
cold; a test marked `cold_boot` gets a cold-booted `machine`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from harness.errors import HarnessError
from harness.log import logger
from harness.pytest import leftovers
from harness.pytest.run_name import run_name
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine
from harness.vm.protocols import Target
from harness.vm.snapshot import Snapshot, snapshot_key

SNAPSHOTS_DIR = "snapshots"  # under --artifacts: one directory per run
RESTORES_FILE = "restores-{pid}.jsonl"  # beside the boot timelines
log = logger("snapshots")

Up = Callable[[Target], None]


def booted_to_stage_90(vm: Target) -> None:
    """The "up" of a default machine (the `machine` fixture's): stage 90 done."""
    vm.wait_for_boot()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesolo")
    group.addoption(
        "--no-snapshots",
        action="store_true",
        help="boot every machine cold: no booted state is saved or restored",
    )


def run_dir(config: pytest.Config) -> Path:
    artifacts = Path(config.getoption("artifacts")).resolve()
    return artifacts / SNAPSHOTS_DIR / run_name(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        leftovers.make_owned_dir(run_dir(session.config))  # a killed run's: leftovers


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(run_dir(session.config), ignore_errors=True)


def config_settings(config: MachineConfig) -> dict[str, Any]:
    """What a booted state depends on: every setting but the machine's name; a
    data disk given as a file, and what a share holds, are named by the
    caller's `extra` instead (their host paths differ from worker to worker)."""
    settings = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "name"}
    settings["allow_failures"] = sorted(config.allow_failures)
    settings["shares"] = sorted(config.shares)
    if not isinstance(config.data_disk, bool):
        settings["data_disk"] = "a file"
    return settings


def can_snapshot(config: MachineConfig, extra: str, shares_released: bool = False) -> bool:
    """Kernel boots only; with 9p shares only when "up" unmounted them (QEMU
    cannot migrate a mounted one); and a disk file or shares only when
    `extra` names their content (it is not in the settings)."""
    named = bool(extra) or (isinstance(config.data_disk, bool) and not config.shares)
    shares_ok = not config.shares or shares_released
    return config.boot == "kernel" and shares_ok and named


def directory_digest(directory: Path) -> str:
    """What a share holds, for `extra`: every file's name and content."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(directory).as_posix()}\0".encode())
        with path.open("rb") as data:
            digest.update(hashlib.file_digest(data, "sha256").digest())
    return digest.hexdigest()[:24]


class SnapshotStore:
    """The run's snapshots, keyed by image and machine settings."""

    def __init__(self, directory: Path | None, records: Path) -> None:
        self.directory = directory  # None: snapshots are off
        self.records = records

    def booted(
        self,
        make: Callable[..., Target],
        settings: dict[str, Any],
        up: Up,
        extra: str = "",
        owner: str = "",
        cold: bool = False,
        shares_released: bool = False,
    ) -> Target:
        """A machine of `settings` (MachineConfig fields) brought `up`: restored
        when this run saved that state already, else started, brought up and
        saved. `extra` names what the settings do not (a preseeded disk, what
        the shares hold); `cold` boots it cold whatever the run has;
        `shares_released`: `up` unmounts every share before it returns."""
        vm = make(**settings)
        if (
            self.directory is None
            or cold
            or not isinstance(vm, Machine)
            or not can_snapshot(vm.config, extra, shares_released)
        ):
            vm.start()
            up(vm)
            return vm
        what = f"{extra}\nup: {getattr(up, '__qualname__', repr(up))}"
        key = snapshot_key(vm.image.path.name, config_settings(vm.config), what)
        snap = Snapshot(self.directory / key)
        with FileLock(str(self.directory / f"{key}.lock")):
            if snap.complete:
                try:
                    vm.restore(snap)
                except Exception as err:
                    raise HarnessError(f"{err} (--no-snapshots boots cold)") from err
                self._record(vm, owner)
                return vm
            vm.start()
            up(vm)
            try:
                vm.save_snapshot(snap.directory)
            except Exception as err:  # the machine is up: only the sharing is lost
                log.warning("[%s] no snapshot saved, it stays booted: %s", vm.config.name, err)
                shutil.rmtree(snap.directory, ignore_errors=True)
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
