"""The relay's protocol and the shared nodes' bookkeeping (docs/architecture.md
"Shared nodes"); the VM tests drive a real machine through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import HarnessError, MachineNotRunning, UserError
from harness.pytest.shared_nodes import attached_users, is_held
from harness.vm.config import MachineConfig
from harness.vm.relay import Relay, RemoteMachine, ask
from harness.vm.shell import Result, ShellTimeout


class Owner:
    """What the relay asks of the owner's Machine, with a shell that answers at once."""

    def __init__(self) -> None:
        self.config = MachineConfig(name="shared")
        self.is_up = True
        self.commands: list[tuple[str, float]] = []

    def run(self, command: str, timeout: float) -> Result:
        self.commands.append((command, timeout))
        if command == "slow":
            raise ShellTimeout(f"no answer within {timeout:.0f}s to: slow")
        return Result(3, b"out\n\xff", b"err")

    def console_text(self, since: int | None = None) -> str:
        return f"console since {since}"

    def forward_port(self, guest_port: int) -> int:
        return 40000 + guest_port


@pytest.fixture
def remote(tmp_path: Path) -> Any:
    owner = Owner()
    relay = Relay(owner, tmp_path / "relay.sock")  # type: ignore[arg-type]
    machine = RemoteMachine(relay.path, owner.config, None, tmp_path)
    yield SimpleNamespace(owner=owner, relay=relay, machine=machine)
    relay.close()


def test_a_command_runs_on_the_owner_and_its_bytes_come_back_exact(remote: Any) -> None:
    assert remote.machine.run("echo", timeout=7) == Result(3, b"out\n\xff", b"err")
    assert remote.owner.commands == [("echo", 7)]
    assert remote.machine.execute("echo") == (3, "out\n\ufffd")


def test_a_timeout_stays_a_timeout_and_other_errors_are_one_line(remote: Any) -> None:
    with pytest.raises(ShellTimeout, match="no answer within 5s"):
        remote.machine.run("slow", timeout=5)
    with pytest.raises(HarnessError, match="unknown relay op 'dance': use run, forward"):
        ask(remote.relay.path, "dance")
    remote.owner.is_up = False
    with pytest.raises(HarnessError, match="shared machine shared is not running"):
        remote.machine.run("echo", timeout=5)


def test_ports_and_console_are_the_owners(remote: Any) -> None:
    assert remote.machine.forward_port(8080) == 48080
    assert remote.machine.host_port(8080) == 48080
    assert remote.machine.console_text() == "console since None"
    assert remote.machine.console_text(12) == "console since 12"


def test_nobody_but_the_owner_powers_a_shared_machine(remote: Any) -> None:
    for action in ("start", "reboot", "hard_reset", "power_off"):
        with pytest.raises(UserError, match="shared by every worker of the run"):
            getattr(remote.machine, action)()
    remote.machine.close()  # a no-op: the owner closes it
    assert remote.machine.is_up


def test_a_gone_owner_is_one_line(remote: Any) -> None:
    assert remote.machine.console.tail(1) == "console since None"
    remote.relay.close()
    with pytest.raises(MachineNotRunning, match="the shared machine's owner is gone"):
        remote.machine.succeed("echo")
    assert remote.machine.console.tail(40).startswith("(no console: the shared machine's owner")


HOLDER = (
    "import fcntl, sys, time\n"
    "handle = open(sys.argv[1], 'a')\n"
    "fcntl.flock(handle, fcntl.LOCK_SH)\n"
    "print('held', flush=True)\n"
    "time.sleep(60)\n"
)


def holder(path: Path) -> subprocess.Popen[str]:
    """A process that holds a shared flock on `path`, as an attached worker does."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def test_a_worker_is_attached_while_it_holds_its_mark(tmp_path: Path) -> None:
    """Marks of exited workers are removed, even while their pid lives on as a zombie
    (a crashed xdist worker is reaped only when the controller ends)."""
    me = os.getpid()
    live = tmp_path / "placeholder"
    alive = holder(live)
    zombie = holder(tmp_path / "placeholder-2")
    try:
        marks = {pid: tmp_path / f"proof.attached-{me}-{pid}" for pid in (alive.pid, zombie.pid, 1)}
        os.replace(live, marks[alive.pid])  # the flock follows the file
        os.replace(tmp_path / "placeholder-2", marks[zombie.pid])
        marks[1].touch()  # a mark nobody holds
        (tmp_path / f"proof.attached-{me + 1}-{alive.pid}").touch()  # another owner's node
        (tmp_path / f"other.attached-{me}-{alive.pid}").touch()  # another node
        zombie.kill()
        deadline = time.monotonic() + 10
        while is_held(marks[zombie.pid]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert Path(f"/proc/{zombie.pid}").exists()  # not reaped: its pid still answers
        assert attached_users(tmp_path, "proof") == [alive.pid]
        assert not marks[zombie.pid].exists() and not marks[1].exists()
    finally:
        for child in (alive, zombie):
            child.kill()
            child.wait()
    assert attached_users(tmp_path, "proof") == []
