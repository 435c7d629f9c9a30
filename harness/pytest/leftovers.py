"""What a killed run leaves behind, and its removal by the next run. A run
killed with SIGKILL skips every teardown: its QEMUs die with it (parent-death
signal), its flocks are released by the kernel, but its run directories and
socket directories stay. Each carries the pid of the process that made it; one
whose process is gone, and that no teardown marked as kept, is a leftover."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from harness.vm.machine import SOCKET_DIR_PREFIX

OWNER_FILE = "owner"  # the pid of the pytest process that made a run directory
KEPT_FILE = "kept"  # written by a teardown that keeps the directory on purpose


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_owner(run_dir: Path) -> None:
    (run_dir / OWNER_FILE).write_text(f"{os.getpid()}\n")


def make_owned_dir(run_dir: Path) -> None:
    """A run directory that goes with the leftovers if this process is killed."""
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_owner(run_dir)


def mark_kept(run_dir: Path) -> None:
    (run_dir / KEPT_FILE).touch()


def owner_of(directory: Path) -> int | None:
    try:
        return int((directory / OWNER_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def leftover_run_dirs(artifacts: Path) -> list[Path]:
    """Run directories under `artifacts` whose owner died and that nobody kept."""
    if not artifacts.is_dir():
        return []
    found = []
    for owner in artifacts.glob(f"*/*/{OWNER_FILE}"):
        directory = owner.parent
        pid = owner_of(directory)
        if pid is not None and not pid_alive(pid) and not (directory / KEPT_FILE).exists():
            found.append(directory)
    return sorted(found)


def leftover_socket_dirs(tmp: Path | None = None) -> list[Path]:
    """Socket directories of machines whose process died."""
    found = []
    for directory in (tmp or Path(tempfile.gettempdir())).glob(f"{SOCKET_DIR_PREFIX}*-*"):
        pid_text = directory.name[len(SOCKET_DIR_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not pid_alive(int(pid_text)):
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
