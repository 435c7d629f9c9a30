"""One machine driven from many processes (docs/architecture.md "Shared
nodes"): the process that started QEMU serves the machine's test shell,
console and port forwards on a Unix socket, and every process, that one
included, drives it through a `RemoteMachine`. Commands from all of them
queue on the test shell's own lock. Power stays with the owner: a shared
machine is never rebooted, reset or powered off by a test.

Protocol: one connection per request, one JSON line each way. A request is
{"op": ..., ...}; a reply is the op's fields, or {"error": ..., "timeout": bool}."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.artefact import Image
from harness.errors import HarnessError, HarnessTimeout, MachineNotRunning, UserError
from harness.vm.config import MachineConfig
from harness.vm.driver import ShellCommands
from harness.vm.machine import Machine
from harness.vm.protocols import ConsoleLog, PortForwarding, ShellAccess
from harness.vm.shell import Result, ShellTimeout

SOCKET_NAME = "relay.sock"  # in the machine's own socket directory (short paths)


def _up(machine: Machine) -> Machine:
    """Never start QEMU from a relay thread: it would die with that thread."""
    if not machine.is_up:
        raise MachineNotRunning(f"shared machine {machine.config.name} is not running")
    return machine


def _run(machine: Machine, request: dict[str, Any]) -> dict[str, Any]:
    result = _up(machine).run(str(request["command"]), float(request["timeout"]))
    return {
        "status": result.status,
        "stdout": base64.b64encode(result.stdout).decode(),
        "stderr": base64.b64encode(result.stderr).decode(),
    }


def _forward(machine: Machine, request: dict[str, Any]) -> dict[str, Any]:
    return {"port": _up(machine).forward_port(int(request["guest"]))}


def _console(machine: Machine, request: dict[str, Any]) -> dict[str, Any]:
    return {"text": machine.console_text(request.get("since"))}


def _status(machine: Machine, _: dict[str, Any]) -> dict[str, Any]:
    return {"up": machine.is_up}


OPS: dict[str, Callable[[Machine, dict[str, Any]], dict[str, Any]]] = {
    "run": _run,
    "forward": _forward,
    "console": _console,
    "status": _status,
}


class Relay:
    """The owner's side: serves `machine` on `path` until closed."""

    def __init__(self, machine: Machine, path: Path) -> None:
        self.machine = machine
        self.path = path
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        threading.Thread(target=self._accept, name="relay", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as stream:
            try:
                request = json.loads(stream.readline() or "{}")
                op = OPS.get(request.get("op", ""))
                if op is None:
                    raise UserError(f"unknown relay op {request.get('op')!r}: use {', '.join(OPS)}")
                reply = op(self.machine, request)
            except HarnessTimeout as err:
                reply = {"error": str(err), "timeout": True}
            except Exception as err:  # whatever broke, the asking worker reads it in one line
                reply = {"error": f"{type(err).__name__}: {err}", "timeout": False}
            with contextlib.suppress(OSError):
                stream.write(json.dumps(reply) + "\n")
                stream.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.path.unlink(missing_ok=True)


def ask(path: Path, op: str, **args: Any) -> dict[str, Any]:
    """One request to a relay; its reply, or the error it names, raised here."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(str(path))
            conn.sendall((json.dumps({"op": op, **args}) + "\n").encode())
            with conn.makefile("r") as stream:
                line = stream.readline()
    except OSError as err:
        raise MachineNotRunning(f"the shared machine's owner is gone ({path}: {err})") from None
    if not line.endswith("\n"):
        raise MachineNotRunning(f"the shared machine's owner hung up ({path})")
    reply: dict[str, Any] = json.loads(line)
    if "error" in reply:
        raise (ShellTimeout if reply["timeout"] else HarnessError)(reply["error"])
    return reply


class RemoteConsole:
    """What a failure report reads of a shared machine's console."""

    def __init__(self, relay: Path) -> None:
        self.relay = relay

    def tail(self, lines: int) -> str:
        """The last `lines` of this boot; a report must not fail on a gone owner."""
        try:
            text = str(ask(self.relay, "console", since=None)["text"])
        except HarnessError as err:
            return f"(no console: {err})"
        return "\n".join(text.splitlines()[-lines:])


class RemoteMachine(ShellCommands):
    """A shared machine as any process drives it: the test shell, this boot's
    console text and port forwards of the owner's Machine, through its relay.
    Typing on its console, and powering it, are for its owner alone."""

    def __init__(
        self,
        relay: Path,
        config: MachineConfig,
        image: Image,
        run_dir: Path,
        restored_at: int | None = None,
    ) -> None:
        self.relay = relay
        self.config = config
        self.image = image
        self.run_dir = run_dir
        self.restored_at = restored_at  # the owner's machine was restored then (host clock)
        self.console = RemoteConsole(relay)
        self.activity = 0
        self._ports: dict[int, int] = {}

    @property
    def is_up(self) -> bool:
        return bool(ask(self.relay, "status")["up"])

    def _run(self, command: str, timeout: float) -> Result:
        reply = ask(self.relay, "run", command=command, timeout=timeout)
        return Result(
            reply["status"], base64.b64decode(reply["stdout"]), base64.b64decode(reply["stderr"])
        )

    def console_text(self, since: int | None = None) -> str:
        """This boot's console (from byte `since` of the whole log, if given)."""
        self.activity += 1
        return str(ask(self.relay, "console", since=since)["text"])

    def wait_for_boot(self, timeout: float | None = None) -> None:
        """The owner shares the machine once it is up: nothing to wait for."""
        if not self.is_up:
            raise MachineNotRunning(f"shared machine {self.config.name} is not running")

    def forward_port(self, guest_port: int) -> int:
        if guest_port not in self._ports:
            with self._step(f"forward guest port {guest_port}"):
                self._ports[guest_port] = int(ask(self.relay, "forward", guest=guest_port)["port"])
        return self._ports[guest_port]

    def host_port(self, guest_port: int) -> int | None:
        return self._ports.get(guest_port)

    def _refuse(self, what: str) -> None:
        raise UserError(
            f"{what}: machine {self.config.name} is shared by every worker of the run; "
            "a test that needs its own machine asks for one (docs/architecture.md "
            '"Shared nodes")'
        )

    def start(self) -> None:
        self._refuse("start")

    def reboot(self) -> None:
        self._refuse("reboot")

    def hard_reset(self) -> None:
        self._refuse("hard reset")

    def power_off(self) -> None:
        self._refuse("power off")

    def crash(self) -> None:
        self._refuse("crash")

    def close(self) -> None:
        """Nothing to do: the owner closes the machine once nobody uses it."""


def _remote_capabilities(remote: RemoteMachine) -> tuple[ShellAccess, ConsoleLog, PortForwarding]:
    return remote, remote, remote  # mypy proves what a RemoteMachine offers
