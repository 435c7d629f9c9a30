"""One test of the target capabilities (docs/architecture.md "Targets"),
written against harness.vm.protocols alone, run on each backend for the
capabilities it declares: a QEMU `Machine`, a `BoardTarget` on the labgrid
QEMU board (two UARTs, power by commands, media written before power-on),
and a shared node's `RemoteMachine`, which reaches its owner's machine
through the relay's socket."""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab_envs import board_env_file

from harness import guest
from harness.errors import HarnessTimeout
from harness.lab.board import BoardTarget, board_session, open_environment
from harness.vm.config import MachineConfig
from harness.vm.driver import CommandFailed
from harness.vm.protocols import (
    BootRecord,
    ConsoleAccess,
    ConsoleLog,
    PortForwarding,
    PowerControl,
    ShellAccess,
)
from harness.vm.relay import SOCKET_NAME, Relay, RemoteMachine
from harness.vm.retry import retry

pytestmark = pytest.mark.boot

GUEST_PORT = 7700  # busybox httpd in the guest
PAGE = "conformance-page\n"
BOOT_ID = "cat /proc/sys/kernel/random/boot_id"


@dataclass
class Backend:
    target: object
    capabilities: tuple[type, ...]


CAPABILITIES = {
    "qemu": (ShellAccess, ConsoleLog, ConsoleAccess, PowerControl, BootRecord, PortForwarding),
    "board": (ShellAccess, ConsoleLog, ConsoleAccess, PowerControl, BootRecord),
    "remote": (ShellAccess, ConsoleLog, PortForwarding),
}


@pytest.fixture(params=sorted(CAPABILITIES))
def backend(request, machine_factory, kubesolo_image, tmp_path: Path) -> Iterator[Backend]:
    if kubesolo_image.manifest.get("flavour") == "release":
        pytest.skip("the release image has no test shell (test_release_console.py)")
    kind = request.param
    with ExitStack() as stack:
        if kind == "board":
            env = open_environment(str(board_env_file(tmp_path, "qemu-board")))
            board = stack.enter_context(board_session(env, kubesolo_image))
            target: object = BoardTarget(board, MachineConfig(name="board"), tmp_path / "run")
            stack.callback(target.close)  # type: ignore[attr-defined]
        else:
            vm = machine_factory(name=kind)
            target = vm
        if kind == "remote":
            vm.start()
            vm.wait_for_boot()
            relay = Relay(vm, vm.socket_dir / SOCKET_NAME)
            stack.callback(relay.close)
            target = RemoteMachine(relay.path, vm.config, vm.image, vm.run_dir)
        yield Backend(target, CAPABILITIES[kind])


def test_each_backend_offers_what_it_declares(backend: Backend, tmp_path: Path):
    """docs/architecture.md "Targets": each capability a backend declares is
    there (isinstance on the protocol) and does what it says on a booted guest."""
    target: Any = backend.target
    for capability in backend.capabilities:
        assert isinstance(target, capability), capability.__name__
    if PowerControl in backend.capabilities:
        target.start()
    target.wait_for_boot()
    assert re.search(guest.BOOT_MARKER, target.console_text())
    check_shell(target, tmp_path)
    for capability, check in LATER_CHECKS:  # in this order: power last but one
        if capability in backend.capabilities:
            check(target)


def check_shell(target: ShellAccess, tmp_path: Path) -> None:
    assert target.succeed("echo one") == "one\n"
    assert target.execute("echo two; exit 3") == (3, "two\n")
    result = target.run("echo out; echo err >&2")
    assert (result.status, result.stdout, result.stderr) == (0, b"out\n", b"err\n")
    target.fail("false")
    with pytest.raises(CommandFailed):
        target.succeed("false")
    # the waits: a file that appears, then goes, while they poll
    flag = "/tmp/conformance-flag"
    target.succeed(f"rm -f {flag}; (sleep 2; touch {flag}) >/dev/null 2>&1 &")
    target.wait_until_succeeds(f"test -e {flag}", timeout=60)
    target.succeed(f"(sleep 2; rm -f {flag}) >/dev/null 2>&1 &")
    target.wait_until_fails(f"test -e {flag}", timeout=60)
    with pytest.raises(CommandFailed, match="last output: seen-last"):
        target.wait_until_succeeds("echo seen-last; false", timeout=2)
    with pytest.raises(CommandFailed, match="not failing: true after 2s"):
        target.wait_until_fails("true", timeout=2)
    # copies: a file of every byte value, over several chunks, with its mode; a tree
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 800 + os.urandom(5000))
    blob.chmod(0o750)
    target.copy_from_host(blob, "/tmp/copied/blob")
    digest = target.succeed("sha256sum /tmp/copied/blob").split()[0]
    assert digest == hashlib.sha256(blob.read_bytes()).hexdigest()
    assert target.succeed("stat -c %a /tmp/copied/blob").strip() == "750"
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf.txt").write_text("leaf\n")
    (tree / "top.txt").write_text("top\n")
    target.copy_from_host(tree, "/tmp/copied/tree")
    listing = target.succeed("cd /tmp/copied/tree && find . -type f | sort && cat sub/leaf.txt")
    assert listing == "./sub/leaf.txt\n./top.txt\nleaf\n"
    assert target.execute("ls -d /tmp/copied/*.copy-part*")[0] != 0  # nothing partial left
    owners = target.succeed("find /tmp/copied/tree -exec stat -c %u:%g {} + | sort -u")
    assert owners == "0:0\n"  # root's, whoever owned the host's tree
    with pytest.raises(CommandFailed, match="is a directory"):
        target.copy_from_host(blob, "/tmp/copied/tree")
    with pytest.raises(CommandFailed, match="exists"):  # a tree is never merged
        target.copy_from_host(tree, "/tmp/copied/tree")
    # ports: busybox httpd listens, then stops
    target.succeed(f"mkdir -p /tmp/www && printf '{PAGE}' > /tmp/www/index.html")
    target.succeed(
        f"busybox httpd -f -p {GUEST_PORT} -h /tmp/www >/dev/null 2>&1 & echo $! > /tmp/httpd.pid"
    )
    target.wait_for_open_port(GUEST_PORT, timeout=60)
    with pytest.raises(CommandFailed, match=f"guest port {GUEST_PORT} still listening after 2s"):
        target.wait_for_closed_port(GUEST_PORT, timeout=2)


def check_console(target: ConsoleAccess) -> None:
    cursor = target.console_cursor()
    target.wait_for_stage("50-network.sh")
    with pytest.raises(HarnessTimeout):
        target.wait_for_console("conformance-mark", timeout=2, since=cursor)
    if isinstance(target, ShellAccess):
        target.succeed("echo conformance-mark > /dev/console")
    match = target.wait_for_console(r"conformance-mark", timeout=60, since=cursor)
    assert match.group(0) == "conformance-mark"
    assert target.console_cursor() > cursor
    assert "conformance-mark" in target.console_text(cursor)


def check_port_forward(target: PortForwarding) -> None:
    port = target.forward_port(GUEST_PORT)
    assert target.host_port(GUEST_PORT) == port

    def page(last_try: bool) -> str | None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
                conn.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                reply = b"".join(iter(lambda: conn.recv(4096), b""))
        except OSError:
            if last_try:
                raise
            return None
        return reply.decode(errors="replace")

    assert retry(page, timeout=60).endswith(PAGE)


def check_power(target: PowerControl) -> None:
    assert isinstance(target, ShellAccess) and isinstance(target, ConsoleLog)
    first = target.succeed(BOOT_ID)
    target.succeed("kill $(cat /tmp/httpd.pid)")
    target.wait_for_closed_port(GUEST_PORT, timeout=60)
    target.reboot()
    target.wait_for_boot()
    second = target.succeed(BOOT_ID)
    assert second != first
    target.crash()
    assert not target.is_up
    target.start()
    target.wait_for_boot()
    assert target.succeed(BOOT_ID) not in (first, second)


def check_boot_record(target: BootRecord) -> None:
    boots = target.boot_timelines()
    assert len(boots) == 3  # the first boot, the reboot, the start after the crash
    stages = [s.name for s in target.stage_timeline()]
    assert stages == list(guest.STAGES)
    run_dir = target.save_artifacts()
    assert {"stage-timeline.json", "boot-timelines.json", "boot-chart.svg"} <= {
        p.name for p in run_dir.iterdir()
    }


# the checks of the capabilities beyond the shell and the console's text, in order
LATER_CHECKS: tuple[tuple[type, Callable[[Any], None]], ...] = (
    (ConsoleAccess, check_console),
    (PortForwarding, check_port_forward),
    (PowerControl, check_power),
    (BootRecord, check_boot_record),
)
