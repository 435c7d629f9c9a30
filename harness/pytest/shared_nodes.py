"""Nodes shared by every xdist worker of a run (docs/architecture.md "Shared
nodes"): the first worker that asks for a node brings it up, under a file
lock (restored from the run's snapshot of that state when there is one), and
serves it through a relay; every worker, that one included, drives it as a
RemoteMachine. The owner keeps the node running until each worker that
attached is done with it; a worker that asks after that brings up a new one.

Who is alive is told by flocks, never by pids: the kernel drops a process's
flocks when it exits, while a crashed xdist worker stays a zombie (its pid
answers kill(0)) until the controller ends."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from filelock import FileLock

from harness.artefact import Image
from harness.errors import HarnessError
from harness.log import logger
from harness.pytest.leftovers import make_owned_dir
from harness.pytest.snapshots import SnapshotStore, Up
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine
from harness.vm.protocols import Target
from harness.vm.relay import SOCKET_NAME, Relay, RemoteMachine

DETACH_POLL = 0.5  # seconds between looks at the workers still attached
log = logger("shared")


def hold(path: Path, how: int) -> IO[str]:
    """`path` opened and flocked (`how`: fcntl.LOCK_EX or LOCK_SH) until closed."""
    handle = path.open("a")
    fcntl.flock(handle, how)
    return handle


def is_held(path: Path) -> bool:
    """Some live process holds a flock on `path`."""
    try:
        with path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


@dataclass(frozen=True)
class NodePlan:
    """A node the suites share: its MachineConfig fields, its "up" (which
    unmounts its shares, so that the node can be saved), and what its shares
    hold (the snapshot key's `extra`). The run's node is `shared`; a test that
    reboots or disturbs it gets one of its `own`, restored from that state."""

    settings: dict[str, Any]
    up: Up
    held: str

    def shared(self, nodes: SharedNodes, name: str) -> RemoteMachine | Target:
        return nodes.node(name, self.settings, self.up, extra=self.held, shares_released=True)

    def own(self, store: SnapshotStore, make: Callable[..., Target], owner: str) -> Target:
        return store.booted(
            make, self.settings, self.up, extra=self.held, owner=owner, shares_released=True
        )


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
        self.run_dir = run_dir  # this worker's: the machines it owns, the nodes it attached to
        self.owned: list[tuple[str, Relay, IO[str]]] = []
        self.attached: list[tuple[Path, IO[str]]] = []
        self.remotes: list[RemoteMachine] = []  # what this worker's tests drive

    def _path(self, name: str, what: str) -> Path:
        return self.directory / f"{name}.{what}"

    def node(
        self,
        name: str,
        settings: dict[str, Any],
        up: Up,
        extra: str = "",
        shares_released: bool = False,
    ) -> RemoteMachine | Target:
        """The run's node `name` of `settings` brought `up` (as SnapshotStore.booted
        takes them): brought up here if no live worker serves it, else attached
        to. On a board, the board itself: one worker, nobody to share it with."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self._path(name, "lock"))):
            failed = self._path(name, "failed")
            if failed.exists():  # one failed bring-up is enough for the run
                raise HarnessError(f"shared node {name} did not come up: {failed.read_text()}")
            info = self._live(name)
            if info is None:
                try:
                    vm = self.store.booted(
                        self.make,
                        {**settings, "name": name},
                        up,
                        extra=extra,
                        owner=f"shared node {name}",
                        shares_released=shares_released,
                    )
                except (Exception, pytest.fail.Exception) as err:
                    failed.write_text(f"{(str(err) or repr(err)).splitlines()[0]}\n")
                    raise
                if not isinstance(vm, Machine):
                    return vm
                info = self._serve(name, vm)
            elif info["owner"] != os.getpid():
                mark = self._path(name, f"attached-{info['owner']}-{os.getpid()}")
                self.attached.append((mark, hold(mark, fcntl.LOCK_SH)))
        if info["owner"] == os.getpid():
            run_dir = Path(info["run_dir"])
        else:
            run_dir = self.run_dir / name
            make_owned_dir(run_dir)  # a killed run's: a leftover for the next run to remove
        config = MachineConfig(name=name)
        remote = RemoteMachine(
            Path(info["relay"]), config, self.image, run_dir, info["restored_at"]
        )
        self.remotes.append(remote)
        return remote

    def _serve(self, name: str, vm: Machine) -> dict[str, Any]:
        """Serve the node this worker brought up; what others need to attach."""
        owned = hold(self._path(name, f"owner-{os.getpid()}"), fcntl.LOCK_EX)
        relay = Relay(vm, vm.socket_dir / SOCKET_NAME)
        info = {
            "owner": os.getpid(),
            "relay": str(relay.path),
            "run_dir": str(vm.run_dir),
            "restored_at": vm.restored_at,
        }
        partial = self._path(name, "json.part")
        partial.write_text(json.dumps(info) + "\n")
        os.replace(partial, self._path(name, "json"))
        self.owned.append((name, relay, owned))
        log.info("[%s] shared by this worker (pid %d)", name, os.getpid())
        return info

    def _live(self, name: str) -> dict[str, Any] | None:
        """The node's owner and relay, while its owner lives and serves it."""
        try:
            info: dict[str, Any] = json.loads(self._path(name, "json").read_text())
        except (OSError, ValueError):
            return None
        if info["owner"] == os.getpid() or is_held(self._path(name, f"owner-{info['owner']}")):
            return info
        return None

    def detach(self, failed: bool = False) -> None:
        """This worker needs no node any more (`failed`: some of its tests failed,
        so each owner keeps its node's artefacts). Every worker detaches before
        any owner waits (close), so that two owners never wait for each other."""
        for mark, handle in self.attached:
            if failed:
                mark.with_name(mark.name.replace(".attached-", ".failed-by-")).touch()
            mark.unlink(missing_ok=True)
            handle.close()
        self.attached.clear()

    def close(self) -> bool:
        """Keep each owned node up until its other users are done, then stop
        serving it (the caller closes the machine). True when a test of another
        worker failed on one of them."""
        self.detach()
        others_failed = False
        for name, relay, owned in self.owned:
            with FileLock(str(self._path(name, "lock"))):  # nobody attaches from here on
                self._path(name, "json").unlink(missing_ok=True)
            waited = False
            while users := attached_users(self.directory, name):
                if not waited:
                    log.info("[%s] waiting for workers %s to finish with it", name, users)
                    waited = True
                time.sleep(DETACH_POLL)
            relay.close()
            owned.close()
            others_failed |= any(self.directory.glob(f"{name}.failed-by-{os.getpid()}-*"))
        self.owned.clear()
        return others_failed


def attached_users(directory: Path, name: str) -> list[int]:
    """The pids of the workers still attached to this worker's node `name`;
    the mark of a worker that exited (its flock gone) is removed."""
    users = []
    for mark in directory.glob(f"{name}.attached-{os.getpid()}-*"):
        if is_held(mark):
            users.append(int(mark.name.rsplit("-", 1)[1]))
        else:
            with contextlib.suppress(OSError):
                mark.unlink()
    return sorted(users)
