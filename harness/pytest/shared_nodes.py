"""Nodes shared by every xdist worker of a run (docs/architecture.md "Shared
nodes"): the first worker that asks for a node brings it up, under a file
lock (restored from the run's snapshot of that state when there is one), and
serves it through a relay; every worker, that one included, drives it as a
RemoteMachine. The owner keeps the node running until each worker that
attached has ended its session; a worker that asks after that brings up a
new one."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.artefact import Image
from harness.log import logger
from harness.pytest.leftovers import make_owned_dir, pid_alive
from harness.pytest.snapshots import SnapshotStore, Up
from harness.vm.machine import Machine, MachineConfig
from harness.vm.relay import SOCKET_NAME, Relay, RemoteMachine
from harness.vm.target import Target

DETACH_POLL = 0.5  # seconds between looks at the workers still attached
log = logger("shared")


class SharedNodes:
    """This worker's view of the run's shared nodes."""

    def __init__(
        self,
        directory: Path,
        store: SnapshotStore,
        make: Callable[..., Target],
        image: Image,
        run_dir: Path,
    ) -> None:
        self.directory = directory  # the run's: every worker sees the same files
        self.store = store
        self.make = make
        self.image = image
        self.run_dir = run_dir  # this worker's: dumps and timings of the nodes it drives
        self.owned: list[tuple[str, Relay]] = []
        self.attached: list[Path] = []

    def _files(self, name: str) -> tuple[Path, FileLock]:
        return self.directory / f"{name}.json", FileLock(str(self.directory / f"{name}.lock"))

    def node(
        self,
        name: str,
        settings: dict[str, Any],
        up: Up,
        extra: str = "",
        shares_released: bool = False,
    ) -> Target:
        """The run's node `name` of `settings` brought `up` (as SnapshotStore.booted
        takes them): brought up here if no live worker serves it, else attached to."""
        self.directory.mkdir(parents=True, exist_ok=True)
        info_path, lock = self._files(name)
        with lock:
            info = _live(info_path)
            if info is None:
                vm = self.store.booted(
                    self.make,
                    {**settings, "name": name},
                    up,
                    extra=extra,
                    owner=f"shared node {name}",
                    shares_released=shares_released,
                )
                if not isinstance(vm, Machine):  # a board: one worker, nobody to share with
                    return vm
                relay = Relay(vm, vm.socket_dir / SOCKET_NAME)
                info = {
                    "owner": os.getpid(),
                    "relay": str(relay.path),
                    "run_dir": str(vm.run_dir),
                    "restored_at": vm.restored_at,
                }
                partial = info_path.with_suffix(".part")
                partial.write_text(json.dumps(info) + "\n")
                os.replace(partial, info_path)
                self.owned.append((name, relay))
                log.info("[%s] shared by this worker (pid %d)", name, os.getpid())
            else:
                mark = self.directory / f"{name}.attached-{os.getpid()}"
                mark.touch()
                self.attached.append(mark)
        if info["owner"] == os.getpid():
            run_dir = Path(info["run_dir"])
        else:
            make_owned_dir(self.run_dir)  # a killed run's: a leftover for the next run to remove
            run_dir = self.run_dir / name
            run_dir.mkdir(exist_ok=True)
        relay_path, restored_at = Path(info["relay"]), info["restored_at"]
        return RemoteMachine(relay_path, MachineConfig(name=name), self.image, run_dir, restored_at)

    def close(self) -> None:
        """Detach from every node first (so that two owners never wait for each
        other), then keep each owned node up until its other users are done."""
        for mark in self.attached:
            mark.unlink(missing_ok=True)
        for name, relay in self.owned:
            info_path, lock = self._files(name)
            with lock:  # nobody attaches from here on
                info_path.unlink(missing_ok=True)
            waited = False
            while users := attached_pids(self.directory, name):
                if not waited:
                    log.info("[%s] waiting for workers %s to finish with it", name, users)
                    waited = True
                time.sleep(DETACH_POLL)
            relay.close()


def _live(info_path: Path) -> dict[str, Any] | None:
    """The node's owner and relay, while its owner lives."""
    try:
        info: dict[str, Any] = json.loads(info_path.read_text())
    except (OSError, ValueError):
        return None
    return info if pid_alive(int(info["owner"])) else None


def attached_pids(directory: Path, name: str) -> list[int]:
    """The live workers attached to node `name` (a killed worker's mark does not count)."""
    pids = []
    for mark in directory.glob(f"{name}.attached-*"):
        pid = int(mark.name.rsplit("-", 1)[1])
        if pid != os.getpid() and pid_alive(pid):
            pids.append(pid)
    return sorted(pids)
