"""What a killed run leaves behind, and its removal by the next run. A run
killed with SIGKILL skips every teardown: its QEMUs die with it (parent-death
signal), its flocks are released by the kernel, but its run directories and
socket directories stay. Each names its owner: a lock file that the owning
process holds (a flock) for its life; one whose lock is free (its process is
gone, whatever PID namespace it ran in: the kernel released the lock), and
that no teardown marked as kept, is a leftover. A pid is no proof: a run in
another PID namespace sharing the checkout or /tmp has pids this one cannot
see."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path

from harness.private import lock_is_held
from harness.process import pid_alive
from harness.vm.machine import SOCKET_DIR_LOCK, SOCKET_DIR_PREFIX

OWNER_FILE = "owner"  # names the owner's lock file (and its pid, for people)
OWNER_LOCKS = ".owners"  # under the artifacts: one lock file per live process
KEPT_FILE = "kept"  # written by a teardown that keeps the directory on purpose
_held: dict[Path, int] = {}  # this process's owner locks, held until it exits


def owner_lock(artifacts: Path) -> Path:
    """This process's owner lock under `artifacts`, taken once and held."""
    directory = artifacts / OWNER_LOCKS
    for held in _held:
        if held.parent == directory:
            return held
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{os.getpid()}-{os.urandom(4).hex()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _held[path] = fd
    return path


def mark_owner(run_dir: Path) -> None:
    """`run_dir` (two levels under the artifacts) belongs to this process."""
    lock = owner_lock(run_dir.parent.parent)
    (run_dir / OWNER_FILE).write_text(f"{lock.name}\n")


def make_owned_dir(run_dir: Path) -> None:
    """A run directory that goes with the leftovers if this process is killed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_owner(run_dir)


def mark_kept(run_dir: Path) -> None:
    (run_dir / KEPT_FILE).touch()


def owner_alive(directory: Path, artifacts: Path) -> bool:
    """Is the process that made `directory` alive? An owner file of an older
    harness (a bare pid) is judged by the pid."""
    try:
        owner = (directory / OWNER_FILE).read_text().strip()
    except OSError:
        return True  # being made: not ours to judge
    if owner.isdigit():
        return pid_alive(int(owner))
    return lock_is_held(artifacts / OWNER_LOCKS / owner)


def leftover_run_dirs(artifacts: Path) -> list[Path]:
    """Run directories under `artifacts` whose owner died and that nobody kept."""
    if not artifacts.is_dir():
        return []
    found = []
    for owner in artifacts.glob(f"*/*/{OWNER_FILE}"):
        directory = owner.parent
        if not owner_alive(directory, artifacts) and not (directory / KEPT_FILE).exists():
            found.append(directory)
    return sorted(found)


def leftover_socket_dirs(tmp: Path | None = None) -> list[Path]:
    """Socket directories of machines whose process died."""
    found = []
    for directory in (tmp or Path(tempfile.gettempdir())).glob(f"{SOCKET_DIR_PREFIX}*-*"):
        try:
            st = os.lstat(directory)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue  # a link, or another user's: never ours to judge or remove
        if os.path.lexists(directory / SOCKET_DIR_LOCK):  # its machine holds it while it lives
            alive = lock_is_held(directory / SOCKET_DIR_LOCK)
        else:  # an older harness's: by its pid
            pid_text = directory.name[len(SOCKET_DIR_PREFIX) :].split("-", 1)[0]
            alive = not pid_text.isdigit() or pid_alive(int(pid_text))
        if not alive:
            found.append(directory)
    return sorted(found)


def remove_leftovers(artifacts: Path) -> list[Path]:
    """Remove what killed runs left; returns what was removed."""
    removed = leftover_run_dirs(artifacts) + leftover_socket_dirs()
    for directory in removed:
        shutil.rmtree(directory, ignore_errors=True)
        if directory.parent != artifacts and directory.parent.parent == artifacts:
            with contextlib.suppress(OSError):  # the test's directory, once empty
                directory.parent.rmdir()
    return removed
