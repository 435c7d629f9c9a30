"""`kubesolo-harness dev`: start a dev VM (on this terminal, or detached),
attach to one, run a command in it, or stop it."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.artefact import Image, cache_root
from harness.build.builder import BuildRequest, build
from harness.build.ssh import inject_ssh, public_key
from harness.dev.server import request
from harness.dev.session import Session, Settings, running_names
from harness.dev.terminal import Terminal, forward_argument
from harness.errors import HarnessError, UserError

DEFAULT_FORWARDS = ({"host": 0, "guest": 6443},)  # KubeSolo's API server
START_TIMEOUT = 120.0  # the server up and QEMU started (a build comes before)
STOP_TIMEOUT = 30.0


def add_arguments(d: argparse.ArgumentParser) -> None:
    d.add_argument("--name", default="dev", help="the VM's name (default: dev)")
    d.add_argument("--image", metavar="DIR", help="an image directory (default: build one)")
    d.add_argument("--flavour", choices=("test", "release"), default="test")
    d.add_argument("--kubesolo-bin", metavar="PATH", help="a kubesolo binary or release tarball")
    d.add_argument("--label", help="the boot label, e.g. kubesolo-shell")
    d.add_argument("--kernel-args", default="", help="more kernel parameters")
    d.add_argument(
        "--forward",
        action="append",
        type=forward_argument,
        metavar="HOST:GUEST",
        help="forward 127.0.0.1:HOST to the guest (repeatable; GUEST alone: any host port; "
        "default: 6443)",
    )
    d.add_argument("--data", metavar="DISK", help="a qcow2 data disk kept across sessions")
    d.add_argument("--memory", type=int, default=512, metavar="MB")
    d.add_argument("--cpus", type=int, default=1)
    d.add_argument("--iso", action="store_true", help="boot the ISO (isolinux) instead")
    d.add_argument("--watch", action="store_true", help="rebuild and reboot when build/ changes")
    d.add_argument(
        "--ssh",
        metavar="PUBKEY",
        help="SSH for debugging: boot a copy of the image with dropbear letting in this key "
        "(inject-ssh), port 22 forwarded to 127.0.0.1",
    )
    d.add_argument(
        "--build-dir",
        metavar="DIR",
        help="with --watch: the OS tree to watch and lay over the image (default: build/)",
    )
    d.add_argument("--detach", action="store_true", help="start it and return")
    d.add_argument("--attach", metavar="NAME", help="the console of a running dev VM")
    d.add_argument("--stop", metavar="NAME", help="stop a running dev VM")
    d.add_argument(
        "--run", nargs=2, metavar=("NAME", "COMMAND"), help="run a command in a dev VM's test shell"
    )
    d.add_argument("--list", action="store_true", help="the running dev VMs")


def main_dev(args: argparse.Namespace) -> int:
    if args.list:
        for name in running_names():
            print(name)
        return 0
    if args.stop:
        return stop(Session(args.stop))
    if args.run:
        return run(Session(args.run[0]), args.run[1])
    if args.attach:
        return attach(Session(args.attach))
    return start(args)


def running(session: Session) -> Session:
    if session.server_pid() is None:
        raise UserError(f"no dev VM named {session.name} is running (see `dev --list`)")
    return session


def stop(session: Session) -> int:
    pid = running(session).server_pid()
    with contextlib.suppress(HarnessError):  # a server that does not answer is killed
        request(session, "stop", timeout=10)
    deadline = time.monotonic() + STOP_TIMEOUT
    while session.server_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid is not None and session.server_pid() == pid:
        os.kill(pid, signal.SIGKILL)  # QEMU dies with it
    print(f"dev VM {session.name} stopped")
    return 0


def run(session: Session, command: str) -> int:
    reply = request(running(session), "run", command=command)
    if not reply["ok"]:
        raise UserError(reply["message"])
    done = json.loads(reply["message"])
    sys.stdout.write(done["output"])
    return int(done["status"])


def attach(session: Session) -> int:
    """Attached, the end of our input leaves the VM running, as a detach."""
    outcome = Terminal(running(session)).run()
    if outcome in ("quit", "closed"):
        deadline = time.monotonic() + STOP_TIMEOUT
        while session.server_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    return 0


SSH_PORT = 22


def ssh_image(image: Image, key: Path) -> Image:
    """The image with SSH letting in `key`, made once per image and key (cached)."""
    line = public_key(key)
    digest = hashlib.sha256(line.encode()).hexdigest()[:12]
    out = cache_root() / "ssh-images" / f"{image.manifest['cache_key']}-{digest}"
    if (out / "manifest.json").is_file():
        return Image.open(out)
    return inject_ssh(image, key, out)


def ssh_command(key: Path, port: int) -> str:
    """How to log in: the private key beside the public one, the forwarded
    port; the host key is made anew at each boot, so none is remembered."""
    private = key.with_suffix("") if key.suffix == ".pub" else key
    return (
        f"ssh -i {private} -p {port} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null root@127.0.0.1"
    )


def settings_from(args: argparse.Namespace, image: Image) -> Settings:
    forwards = list(args.forward or DEFAULT_FORWARDS)
    if args.ssh and all(f["guest"] != SSH_PORT for f in forwards):
        forwards.append({"host": 0, "guest": SSH_PORT})
    return Settings(
        name=args.name,
        image=str(image.path),
        label=args.label,
        kernel_args=args.kernel_args,
        memory_mb=args.memory,
        cpus=args.cpus,
        iso=args.iso,
        data=str(Path(args.data).resolve()) if args.data else None,
        forwards=[(f["host"], f["guest"]) for f in forwards],
        watch=args.watch,
        build_dir=str(Path(args.build_dir).resolve()) if args.build_dir else None,
        kubesolo_bin=str(Path(args.kubesolo_bin).resolve()) if args.kubesolo_bin else None,
        owner=None if args.detach else os.getpid(),
    )


def start(args: argparse.Namespace) -> int:
    session = Session(args.name)
    if args.image:
        image = Image.open(Path(args.image))
    else:
        kubesolo = Path(args.kubesolo_bin) if args.kubesolo_bin else None
        image = build(BuildRequest(flavour=args.flavour, kubesolo_bin=kubesolo))
    if args.watch and args.iso:
        raise UserError("--watch boots the kernel directly: leave out --iso")
    if args.watch and args.ssh:
        raise UserError("--watch rebuilds the image without SSH: leave out --ssh or --watch")
    if args.ssh:
        image = ssh_image(image, Path(args.ssh))
    session.create(settings_from(args, image))
    server = _spawn(session, detached=args.detach)
    ready = _wait_ready(session, server)
    print(f"[dev] {session.name}: console socat -,raw,echo=0 UNIX-CONNECT:{ready['console']}")
    for guest_port, host in ready["forwards"].items():
        print(f"[dev] 127.0.0.1:{host} -> guest port {guest_port}")
    print(f"[dev] data disk {ready['data_disk']}")
    if args.ssh:
        print(f"[dev] ssh: {ssh_command(Path(args.ssh), ready['forwards'][str(SSH_PORT)])}")
    print(
        f"[dev] attach: kubesolo-harness dev --attach {session.name} · "
        f"run: kubesolo-harness dev --run {session.name} 'CMD' · "
        f"stop: kubesolo-harness dev --stop {session.name}"
    )
    if args.detach:
        return 0
    outcome = "quit"
    try:
        for signum in (signal.SIGHUP, signal.SIGTERM):
            signal.signal(signum, _exit_on_signal)
        outcome = Terminal(session).run()
    except (KeyboardInterrupt, SystemExit):
        pass
    if outcome != "detach" and server.poll() is None:
        server.terminate()  # the menu's quit has asked already; a signal, EOF have not
    status = _wait_server(server, outcome)
    if session.error_file.exists():  # the server failed after it started
        error = session.error_file.read_text().strip()
        session.remove()
        raise UserError(f"the dev VM stopped: {error}")
    return status


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def _wait_server(server: subprocess.Popen[bytes], outcome: str) -> int:
    if outcome == "detach":
        return 0
    try:
        server.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    return 0


def _spawn(session: Session, detached: bool) -> subprocess.Popen[bytes]:
    """The server, in its own session either way: the foreground command
    watches over it (it stops when this process is gone), a detached one
    runs until --stop."""
    log = session.log_file.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "harness.dev.serve", session.name],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def _wait_ready(session: Session, server: subprocess.Popen[bytes]) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if session.ready_file.exists():
            return json.loads(session.ready_file.read_text())
        if session.error_file.exists() or server.poll() is not None:
            error = session.error_file.read_text().strip() if session.error_file.exists() else ""
            session.remove()
            raise UserError(f"the dev VM did not start: {error or 'its server exited'}")
        time.sleep(0.05)
    server.kill()
    session.remove()
    raise UserError(f"the dev VM did not start within {START_TIMEOUT:.0f}s")
