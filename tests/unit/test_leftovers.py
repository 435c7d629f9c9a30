"""What killed runs leave behind (docs/architecture.md "Hygiene"): run directories
and socket directories whose process died and that no teardown kept."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import process
from harness.pytest import leftovers
from harness.vm.machine import SOCKET_DIR_LOCK

REPO = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def run_dir(artifacts, name, pid=None, kept=False):
    directory = artifacts / "test_x" / name
    directory.mkdir(parents=True)
    if pid is not None:
        (directory / leftovers.OWNER_FILE).write_text(f"{pid}\n")
    if kept:
        leftovers.mark_kept(directory)
    return directory


def test_only_unkept_directories_of_dead_owners_are_leftovers(tmp_path):
    dead = dead_pid()
    orphan = run_dir(tmp_path, "orphan", dead)
    run_dir(tmp_path, "kept", dead, kept=True)
    run_dir(tmp_path, "live", os.getpid())
    run_dir(tmp_path, "unowned")
    assert leftovers.leftover_run_dirs(tmp_path) == [orphan]


def test_socket_dirs_are_named_after_their_process(tmp_path):
    dead = dead_pid()
    (tmp_path / f"ksh-{dead}-abc").mkdir()
    (tmp_path / "ksh-1-def").mkdir()  # init is alive
    (tmp_path / "ksh-nopid").mkdir()
    assert leftovers.leftover_socket_dirs(tmp_path) == [tmp_path / f"ksh-{dead}-abc"]


def test_removal_takes_the_emptied_test_directory_too(tmp_path):
    orphan = run_dir(tmp_path, "orphan", dead_pid())
    assert orphan in leftovers.remove_leftovers(tmp_path)
    assert not (tmp_path / "test_x").exists()


def test_a_live_owner_in_another_pid_namespace_keeps_its_directory(tmp_path):
    """docs/architecture.md "Hygiene": a run in another PID namespace has pids
    this one cannot see; its lock says it is alive, and its directory stays
    until it dies."""
    if os.geteuid() != 0:
        pytest.skip("unshare --pid needs root")
    live = tmp_path / "test_x" / "live"
    code = (
        "import sys, time; from pathlib import Path; from harness.pytest import leftovers; "
        f"d = Path({str(live)!r}); d.mkdir(parents=True); leftovers.mark_owner(d); "
        "print('ready', flush=True); time.sleep(120)"
    )
    # the owner's pid there (32701) is one no process has here
    script = f'echo 32700 > /proc/sys/kernel/ns_last_pid; {sys.executable} -c "{code}"; true'
    owner = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "ready\n"
        assert leftovers.leftover_run_dirs(tmp_path) == []
        assert (live / leftovers.OWNER_FILE).read_text().startswith("32701-")
        assert not process.pid_alive(32701)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 30  # the namespace's processes die after unshare
    while not leftovers.leftover_run_dirs(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert leftovers.leftover_run_dirs(tmp_path) == [live]


def test_a_socket_dir_lives_while_its_machine_holds_it(tmp_path):
    dead = dead_pid()
    held = tmp_path / f"ksh-{dead}-held"  # its pid says dead, its lock says alive
    held.mkdir()
    fd = os.open(held / SOCKET_DIR_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    free = tmp_path / "ksh-1-free"  # its pid says alive, its free lock says dead
    free.mkdir()
    (free / SOCKET_DIR_LOCK).touch()
    try:
        assert leftovers.leftover_socket_dirs(tmp_path) == [free]
    finally:
        os.close(fd)
    assert leftovers.leftover_socket_dirs(tmp_path) == sorted([held, free])


def test_another_users_socket_dirs_are_never_judged(tmp_path):
    """docs/architecture.md "Shared hosts": a socket directory of another user's
    (closed to us when we are not root) is neither read nor removed."""
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    theirs = tmp_path / f"ksh-{dead_pid()}-theirs"
    theirs.mkdir(mode=0o700)
    (theirs / SOCKET_DIR_LOCK).touch()
    os.chown(theirs, 65534, 65534)
    assert leftovers.leftover_socket_dirs(tmp_path) == []
