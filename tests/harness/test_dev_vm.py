"""`kubesolo-harness dev` driven as a developer drives it, through a pty
(docs/architecture.md "Developer tools"): the boot on the terminal, typed
commands at the kubesolo.shell label's shell, the Ctrl-] menu, detach,
attach, run and stop, no QEMU left however the command ends, and --watch
booting an edited stage script with its edit -> stage 90 time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pexpect
import pytest
from child_pytest import as_from_a_terminal

from harness import guest
from harness.dev.server import request
from harness.dev.session import Session

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
BOOT_TIMEOUT = 240  # a boot under TCG, with other VMs running
GONE_TIMEOUT = 30  # the server and QEMU gone after the command's end


@pytest.fixture
def dev_env(monkeypatch):
    """Sessions in this test's own directory, short enough for Unix socket
    paths (pytest's tmp_path under xdist is not)."""
    runtime = tempfile.mkdtemp(prefix="ksd-", dir="/tmp")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield {**os.environ, "XDG_RUNTIME_DIR": runtime}
    shutil.rmtree(runtime, ignore_errors=True)


def dev_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", "dev", *args]


def spawn(env: dict[str, str], *args: str) -> pexpect.spawn:
    """The command on a terminal of its own, with Ctrl-C's SIGINT at its default
    as a shell starts it: a suite started in the background ignores SIGINT, and
    the command would inherit that."""
    command = dev_command(*args)
    child = pexpect.spawn(
        command[0], command[1:], cwd=REPO, env=env, timeout=BOOT_TIMEOUT,
        encoding="utf-8", codec_errors="replace", dimensions=(50, 200),
        preexec_fn=as_from_a_terminal,
    )  # fmt: skip
    return child


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        dev_command(*args), cwd=REPO, env=env, capture_output=True, text=True, check=check,
        timeout=BOOT_TIMEOUT,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_using(directory: Path) -> list[str]:
    """Command lines of live processes that name `directory` (QEMU names its
    data disk there; the server its session)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(directory) in text:
            found.append(text)
    return found


def assert_all_gone(session: Session) -> None:
    """No QEMU (it names its data disk in the session directory) and no
    server (its pid file) is left."""
    deadline = time.monotonic() + GONE_TIMEOUT
    # the server removes its pid file as it exits, after its QEMU has gone
    while (
        (left := processes_using(session.dir)) or session.server_pid() is not None
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running after {GONE_TIMEOUT}s: {left}"
    assert session.server_pid() is None
    assert not session.dir.exists() or not any(session.dir.glob("*.sock"))


def test_dev_shows_the_boot_takes_commands_and_quits_clean(kubesolo_image, dev_env):
    """docs/architecture.md "Developer tools": the boot scrolls by on the
    terminal, the kubesolo.shell label's shell takes typed commands, the
    menu saves a snapshot, powers the VM off and on again, and its quit
    stops the VM: nothing is left."""
    session = Session(f"pty-{os.getpid()}")
    child = spawn(
        dev_env, "--name", session.name, "--image", str(kubesolo_image.path),
        "--label", "kubesolo-shell",
    )  # fmt: skip
    child.expect(r"Stage 00-early-mount\.sh complete")
    child.expect(guest.SHELL_PROMPT)
    child.send("echo $((6 * 7))\r")
    child.expect(r"\r\n42\r\n")
    child.send("\x1d")
    child.expect(r"s save a snapshot")
    child.send("s")
    child.expect(r"save a snapshot: snapshot dev-\S+ saved", timeout=120)
    child.send("\x1d")
    child.expect(r"o power off")
    child.send("o")
    child.expect(r"power off: powered off")
    assert not processes_using(session.dir)
    child.send("\x1d")
    child.expect(r"p power on")
    child.send("p")
    child.expect(r"power on: powered on")
    child.expect(guest.SHELL_PROMPT)
    time.sleep(2)  # QEMU outlives the server thread that asked for it
    child.send("echo $((6 * 8))\r")
    child.expect(r"\r\n48\r\n")
    child.send("\x1d")
    child.expect(r"q quit")
    child.send("q")
    child.expect(pexpect.EOF, timeout=GONE_TIMEOUT)
    child.close()
    assert child.exitstatus == 0
    assert_all_gone(session)


def test_detached_dev_vm_run_forward_attach_detach_stop(kubesolo_image, dev_env, tmp_path):
    """docs/architecture.md "Developer tools": --detach returns with the ways
    in; --run reaches the test shell; a forward reaches a guest server; an
    attach and the menu's detach leave the VM running; the menu's clean shutdown
    and --stop end it; the --data disk keeps what the node wrote (no sync) for
    the next session."""
    session = Session(f"detached-{os.getpid()}")
    disk = tmp_path / "node.qcow2"
    started = run(
        dev_env, "--name", session.name, "--image", str(kubesolo_image.path), "--detach",
        "--forward", "0:8080", "--data", str(disk),
    )  # fmt: skip
    assert f"UNIX-CONNECT:{session.console_sock}" in started.stdout
    assert f"dev --stop {session.name}" in started.stdout
    assert run(dev_env, "--list").stdout.split() == [session.name]
    kernel = run(dev_env, "--run", session.name, "cat /proc/sys/kernel/osrelease").stdout
    assert kernel.strip() == kubesolo_image.manifest["kernel_version"]
    assert run(dev_env, "--run", session.name, "exit 3", check=False).returncode == 3

    run(dev_env, "--run", session.name, "mkdir -p /tmp/www && echo hello > /tmp/www/index.html")
    run(dev_env, "--run", session.name, "httpd -p 8080 -h /tmp/www")
    port = json.loads(request(session, "status")["message"])["forwards"]["8080"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as reply:
        assert reply.read() == b"hello\n"
    chosen = free_port()  # a forward on a host port the user names (the menu's f)
    reply = request(session, "forward", host=chosen, guest=8080)
    assert reply == {"ok": True, "message": f"127.0.0.1:{chosen} -> guest port 8080"}
    with urllib.request.urlopen(f"http://127.0.0.1:{chosen}/", timeout=30) as reply:
        assert reply.read() == b"hello\n"

    child = spawn(dev_env, "--attach", session.name)
    child.expect(rf"\[dev\] {session.name}: the serial console")
    child.send("\x1d")
    child.expect(r"d detach")
    child.send("d")
    child.expect(pexpect.EOF, timeout=GONE_TIMEOUT)
    child.close()
    assert child.exitstatus == 0
    assert run(dev_env, "--run", session.name, "echo still-up").stdout == "still-up\n"

    wait_for_stage90(dev_env, session)  # stage 20 has mounted the data disk
    run(dev_env, "--run", session.name, f"echo kept > {guest.DATA_MNT}/dev-probe")
    reply = request(session, "shutdown")  # the menu's O: init unmounts, then powers off
    assert reply["ok"] and reply["message"].startswith("shut down"), reply
    assert run(dev_env, "--stop", session.name).stdout == f"dev VM {session.name} stopped\n"
    assert_all_gone(session)
    assert run(dev_env, "--list").stdout == ""

    again = ("--name", session.name, "--image", str(kubesolo_image.path), "--data", str(disk))
    run(dev_env, *again, "--detach")
    try:
        wait_for_stage90(dev_env, session)
        kept = run(dev_env, "--run", session.name, f"cat {guest.DATA_MNT}/dev-probe").stdout
        assert kept == "kept\n"
    finally:
        run(dev_env, "--stop", session.name, check=False)
    assert_all_gone(session)


@pytest.mark.parametrize(
    "how",
    [signal.SIGKILL, signal.SIGHUP, signal.SIGINT],
    ids=["kill-9", "terminal-closed", "ctrl-c"],
)
def test_no_qemu_left_when_the_command_ends(kubesolo_image, dev_env, how):
    """docs/architecture.md "Developer tools": killed with -9, its terminal
    closed (SIGHUP) or interrupted, the command leaves no server and no QEMU."""
    session = Session(f"end-{how.value}-{os.getpid()}")
    child = spawn(dev_env, "--name", session.name, "--image", str(kubesolo_image.path))
    child.expect(r"the serial console; Ctrl-\] for the menu")
    child.expect(r"Stage 00-early-mount\.sh complete")
    assert processes_using(session.dir), "no QEMU was running"
    os.kill(child.pid, how)
    child.expect(pexpect.EOF, timeout=GONE_TIMEOUT)
    child.close()
    assert_all_gone(session)


def test_watch_boots_an_edited_stage_script(kubesolo_image, dev_env, tmp_path):
    """docs/architecture.md "Developer tools" (fast iteration): with --watch,
    a one-line change to a stage script is laid over the image and booted on
    the same data disk; the watcher reports edit -> stage 90 time."""
    tree = tmp_path / "build"
    shutil.copytree(REPO / "build", tree, symlinks=True)
    session = Session(f"watch-{os.getpid()}")
    run(
        dev_env, "--name", session.name, "--image", str(kubesolo_image.path), "--detach",
        "--watch", "--build-dir", str(tree),
    )  # fmt: skip
    try:
        wait_for_stage90(dev_env, session)
        run(dev_env, "--run", session.name, f"echo kept > {guest.DATA_MNT}/watch-probe && sync")
        stage = tree / "rootfs/usr/lib/kubesolo-os/init.d/40-sysctl.sh"
        with stage.open("a") as f:
            f.write('log "dev-watch: edited"\n')
        event = wait_for_event(session)
        assert event["kind"] == "overlay", event
        assert event["changed"] == "rootfs/usr/lib/kubesolo-os/init.d/40-sysctl.sh"
        print(f"edit -> stage 90: {event}")
        console = (session.run_dir / "console.log").read_text(errors="replace")
        assert f"{guest.INIT_PREFIX} [INFO] dev-watch: edited" in console
        kept = run(dev_env, "--run", session.name, f"cat {guest.DATA_MNT}/watch-probe").stdout
        assert kept == "kept\n"
    finally:
        run(dev_env, "--stop", session.name, check=False)
    assert_all_gone(session)


def wait_for_stage90(env: dict[str, str], session: Session) -> None:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        probe = run(env, "--run", session.name, f"test -s {guest.STANDIN_ARGV}", check=False)
        if probe.returncode == 0:
            return
        time.sleep(1)
    pytest.fail(f"no stage 90 within {BOOT_TIMEOUT}s")


def wait_for_event(session: Session) -> dict:
    deadline = time.monotonic() + BOOT_TIMEOUT
    while time.monotonic() < deadline:
        events = json.loads(request(session, "status")["message"])["events"]
        if events:
            assert "error" not in events[-1], events[-1]
            return events[-1]
        time.sleep(0.5)
    pytest.fail(f"the watcher booted nothing within {BOOT_TIMEOUT}s")


def test_dev_ssh_forwards_port_22_and_prints_the_command(kubesolo_image, dev_env, tmp_path):
    """docs/architecture.md "SSH": `dev --ssh PUBKEY` boots a copy of the image with
    SSH, forwards port 22 to 127.0.0.1 and prints the ssh command, which logs in."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    session = Session(f"ssh-{os.getpid()}")
    started = run(
        dev_env, "--name", session.name, "--image", str(kubesolo_image.path), "--detach",
        "--ssh", f"{key}.pub",
    )  # fmt: skip
    try:
        (line,) = [x for x in started.stdout.splitlines() if x.startswith("[dev] ssh: ")]
        command = line.removeprefix("[dev] ssh: ").split()
        assert command[:3] == ["ssh", "-i", str(key)]
        port = json.loads(request(session, "status")["message"])["forwards"]["22"]
        assert command[command.index("-p") + 1] == str(port)
        wait_for_stage90(dev_env, session)
        login = subprocess.run(
            [*command[:-1], "-o", "BatchMode=yes", command[-1], "echo via-ssh"],
            capture_output=True, text=True, timeout=BOOT_TIMEOUT,
        )  # fmt: skip
        assert login.stdout == "via-ssh\n", login.stderr
    finally:
        run(dev_env, "--stop", session.name, check=False)
    assert_all_gone(session)
