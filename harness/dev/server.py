"""The dev VM's server: owns one Machine, serves its serial console on a Unix
socket (every byte so far, then live; what a client sends is typed on the
console) and takes power and port commands on a control socket, one JSON
line each. It stops on SIGTERM, SIGHUP or SIGINT, or when the command that
started it is gone, and QEMU dies with it.

QEMU dies with the *thread* that started it (PR_SET_PDEATHSIG), so every
action that starts or stops QEMU runs on the server's main thread: the
control threads and the watcher hand it over through a queue."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import yaml

from harness import guest
from harness.artefact import Image
from harness.dev.session import Session, Settings
from harness.disk import create_overlay
from harness.errors import HarnessError, MachineNotRunning
from harness.k8s.client import rewrite_kubeconfig
from harness.log import logger
from harness.private import write_private
from harness.process import pid_alive
from harness.tools import run_tool
from harness.vm.config import MachineConfig
from harness.vm.console import ConsoleClosed
from harness.vm.machine import Machine

BACKLOG = 256 * 1024  # console bytes a client that attaches late gets first
OWNER_POLL = 0.5  # seconds between looks at the command that started us
log = logger("dev")


def data_disk(settings: Settings, image: Image, session: Session) -> Path:
    """The data disk: a named qcow2 kept across sessions (made from the
    image's blank disk the first time; an existing one is used as it is,
    never formatted), or a disposable overlay in the session directory."""
    if settings.data is None:
        return create_overlay(image.data_disk, session.dir / "data-overlay.qcow2")
    disk = Path(settings.data).resolve()
    if not disk.exists():
        disk.parent.mkdir(parents=True, exist_ok=True)
        run_tool(["qemu-img", "convert", "-O", "qcow2", str(image.data_disk), str(disk)])
    return disk


class DevServer:
    def __init__(self, session: Session, image: Image) -> None:
        self.session = session
        self.settings = session.settings()
        self.image = image
        self.disk = data_disk(self.settings, image, session)
        self.stopping = threading.Event()
        self.machine = self._machine(image)
        self.forwards: dict[int, int] = {}  # guest port -> host port
        self.jobs: queue.Queue[tuple[Callable[[], str], Future[str]]] = queue.Queue()
        self.events: list[dict[str, Any]] = []  # what the watcher did, for `status`
        self.notes: list[str] = []  # lines for every console client, e.g. the watcher's
        self.owner = self.settings.owner

    def _machine(self, image: Image) -> Machine:
        s = self.settings
        config = MachineConfig(
            boot="iso" if s.iso else "kernel",
            label=s.label,
            kernel_args=s.kernel_args,
            memory_mb=s.memory_mb,
            cpus=s.cpus,
            data_disk=self.disk,
            name=s.name,
        )
        return Machine(image, config, run_dir=self.session.run_dir)

    # ---- the main thread ------------------------------------------------------------
    def on_main(self, job: Callable[[], str]) -> str:
        """Run `job` on the main thread (which owns QEMU); its result or error."""
        if threading.current_thread() is threading.main_thread():
            return job()
        done: Future[str] = Future()
        self.jobs.put((job, done))
        return done.result()

    def start(self) -> None:
        self.machine.start()
        self._forward_all()

    def _forward_all(self) -> None:
        """The settings' forwards and the menu's, on the same host ports as
        before a power cycle or a rebuild."""
        wanted = {guest_port: host for host, guest_port in self.settings.forwards}
        wanted.update(self.forwards)
        for guest_port, host in wanted.items():
            self.forwards[guest_port] = self._forward(host, guest_port)

    def _forward(self, host: int, guest_port: int) -> int:
        if host == 0 or self.machine.host_port(guest_port) == host:
            return self.machine.forward_port(guest_port)
        rule = f"tcp:127.0.0.1:{host}-:{guest_port}"
        reply = self.machine.qmp(
            "human-monitor-command", **{"command-line": f"hostfwd_add net0 {rule}"}
        )
        if reply:
            raise HarnessError(f"host port {host}: {str(reply).strip()}")
        return host

    def swap_image(self, image: Image) -> None:
        """Boot `image` on the same data disk and ports (the watcher's rebuild);
        the previous rebuild's files go."""

        def swap() -> str:
            self.machine.close()
            previous, self.image = self.image, image
            self.machine = self._machine(image)
            self.start()
            if "overlay_of" in previous.manifest and previous.path != image.path:
                shutil.rmtree(previous.path, ignore_errors=True)
            return "swapped"

        self.on_main(swap)

    def serve(self, watcher: Callable[[DevServer], None] | None = None) -> None:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        console = _listen(self.session.console_sock)
        control = _listen(self.session.control_sock)
        try:
            self.start()
            _thread(self._accept, console, self._console_client)
            _thread(self._accept, control, self._control_client)
            if watcher:
                _thread(self._guarded, watcher)
            _thread(self._kubeconfig)
            _write_atomically(self.session.ready_file, json.dumps(self.ready()) + "\n")
            self._main_loop()
        finally:
            console.close()
            control.close()
            with contextlib.suppress(Exception):
                self.machine.close()

    def _main_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                job, done = self.jobs.get(timeout=OWNER_POLL)
            except queue.Empty:
                if self.owner is not None and not pid_alive(self.owner):
                    log.info("[dev] %s: its command is gone: stopping", self.settings.name)
                    self.stopping.set()
                continue
            try:
                done.set_result(job())
            except Exception as err:  # the asking thread reports it
                done.set_exception(err)

    def _guarded(self, watcher: Callable[[DevServer], None]) -> None:
        try:
            watcher(self)
        except Exception as err:  # a watcher that dies says so; the VM stays
            self.note(f"the watcher stopped: {err}")

    def note(self, text: str) -> None:
        log.info("[dev] %s", text)
        self.notes.append(text)

    def _kubeconfig(self) -> None:
        """With a real KubeSolo: its admin kubeconfig, pointed at the forwarded
        6443, in the session directory once KubeSolo has written it."""
        if self.image.manifest.get("kubesolo") != "real" or 6443 not in self.forwards:
            return
        deadline = time.monotonic() + 1800
        while not self.stopping.wait(5) and time.monotonic() < deadline:
            machine = self.machine
            if not machine.is_up:
                continue  # never start QEMU from here
            with contextlib.suppress(HarnessError):
                status, text = machine.execute(f"cat {guest.ADMIN_KUBECONFIG}", timeout=30)
                if status == 0 and text.strip():
                    config = rewrite_kubeconfig(text, self.forwards[6443])
                    write_private(self.session.kubeconfig, yaml.safe_dump(config).encode())
                    self.note(f"kubeconfig: {self.session.kubeconfig}")
                    return

    def ready(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "console": str(self.session.console_sock),
            "control": str(self.session.control_sock),
            "forwards": {str(g): h for g, h in self.forwards.items()},
            "data_disk": str(self.disk),
            "run_dir": str(self.session.run_dir),
        }

    # ---- sockets ------------------------------------------------------------------
    def _accept(self, listener: socket.socket, handle: Callable[[socket.socket], None]) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            _thread(handle, conn)

    def _console_client(self, conn: socket.socket) -> None:
        gone = threading.Event()  # the client hung up
        _thread(self._typed, conn, gone)
        machine, cursor, noted = None, 0, len(self.notes)
        try:
            while not (self.stopping.is_set() or gone.is_set()):
                for text in self.notes[noted:]:
                    conn.sendall(f"\r\n[dev] {text}\r\n".encode())
                    noted += 1
                if self.machine is not machine:
                    first = machine is None
                    machine = self.machine
                    cursor = max(0, machine.console.cursor() - BACKLOG) if first else 0
                try:
                    data = machine.console.read(cursor, 65536, 0.2)
                except ConsoleClosed:
                    time.sleep(0.2)  # powered off, or being swapped
                    continue
                if data:
                    conn.sendall(data)
                    cursor += len(data)
        except OSError:
            pass
        finally:
            conn.close()

    def _typed(self, conn: socket.socket, gone: threading.Event) -> None:
        """What the client types goes to the console, byte for byte; a key
        typed while the VM is off is dropped."""
        try:
            while data := conn.recv(4096):
                with contextlib.suppress(ConsoleClosed, OSError):
                    self.machine.console.send(data)
        except OSError:
            pass
        finally:
            gone.set()

    def _control_client(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw") as stream:
            try:
                request = json.loads(stream.readline() or "{}")
                reply = {"ok": True, "message": self.command(request)}
            except (HarnessError, KeyError, ValueError, OSError) as err:
                reply = {"ok": False, "message": str(err)}
            stream.write(json.dumps(reply) + "\n")
            stream.flush()

    # ---- commands -------------------------------------------------------------
    def command(self, request: dict[str, Any]) -> str:
        op = request.get("op", "")
        if op in IMMEDIATE:
            return IMMEDIATE[op](self, request)
        if op in ON_MAIN:
            return self.on_main(lambda: ON_MAIN[op](self, request))
        known = ", ".join([*ON_MAIN, *IMMEDIATE])
        raise ValueError(f"unknown command {op!r}: use {known}")


def _up(server: DevServer) -> Machine:
    if not server.machine.is_up:
        raise MachineNotRunning("the VM is powered off: power it on first (menu p)")
    return server.machine


def _reboot(server: DevServer, _: dict) -> str:
    _up(server).reboot()
    return "rebooting (init stops KubeSolo, unmounts, then reboots)"


def _reset(server: DevServer, _: dict) -> str:
    _up(server).hard_reset()
    return "reset (no sync)"


def _shutdown(server: DevServer, _: dict) -> str:
    _up(server).shutdown()
    return "shut down (init stopped KubeSolo and unmounted); power on with the menu's p"


def _power_off(server: DevServer, _: dict) -> str:
    server.machine.power_off()
    return "powered off (QEMU stopped); power on with the menu's p"


def _power_on(server: DevServer, _: dict) -> str:
    if server.machine.is_up:
        return "already on"
    server.start()
    return "powered on"


def _forward(server: DevServer, request: dict) -> str:
    host, guest_port = int(request.get("host", 0)), int(request["guest"])
    if not 1 <= guest_port <= 65535 or not 0 <= host <= 65535:
        raise ValueError(f"ports {host}:{guest_port}: 1-65535 (host 0: any free port)")
    _up(server)
    server.forwards[guest_port] = server._forward(host, guest_port)
    return f"127.0.0.1:{server.forwards[guest_port]} -> guest port {guest_port}"


def _snapshot(server: DevServer, request: dict) -> str:
    name = request.get("name") or time.strftime("dev-%Y%m%d-%H%M%S")
    reply = _up(server).qmp("human-monitor-command", **{"command-line": f"savevm {name}"})
    if reply:
        raise HarnessError(f"snapshot {name}: {str(reply).strip()}")
    return f"snapshot {name} saved in {server.disk} (qemu-img snapshot -l lists it)"


def _run(server: DevServer, request: dict) -> str:
    """A test-shell command: on the asking thread (the shell has its own lock),
    and never a power-on."""
    timeout = float(request.get("timeout", 60))
    status, out = _up(server).execute(request["command"], timeout=timeout)
    return json.dumps({"status": status, "output": out})


def _status(server: DevServer, _: dict) -> str:
    return json.dumps({**server.ready(), "up": server.machine.is_up, "events": server.events})


def _detach(server: DevServer, _: dict) -> str:
    server.owner = None
    return "detached: the VM runs until `kubesolo-harness dev --stop NAME`"


def _stop(server: DevServer, _: dict) -> str:
    server.stopping.set()
    return "stopping"


# Power and port actions queue for the main thread; the rest answer at once.
ON_MAIN: dict[str, Callable[[DevServer, dict], str]] = {
    "reboot": _reboot,
    "reset": _reset,
    "shutdown": _shutdown,
    "poweroff": _power_off,
    "poweron": _power_on,
    "forward": _forward,
    "snapshot": _snapshot,
}
IMMEDIATE: dict[str, Callable[[DevServer, dict], str]] = {
    "run": _run,
    "status": _status,
    "detach": _detach,
    "stop": _stop,
}


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)
    return listener


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def _thread(target: Callable[..., Any], *args: Any) -> None:
    threading.Thread(target=target, args=args, daemon=True).start()


def request(session: Session, op: str, timeout: float = 300, **args: Any) -> dict[str, Any]:
    """Send one command to a session's server; its reply. A server that is
    gone, or hangs up without an answer, is one HarnessError."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(session.control_sock))
            s.sendall((json.dumps({"op": op, **args}) + "\n").encode())
            with s.makefile("r") as stream:
                return json.loads(stream.readline())
    except (OSError, ValueError) as err:
        raise HarnessError(f"dev VM {session.name} did not answer {op!r}: {err}") from None
