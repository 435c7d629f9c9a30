"""Directories only this user may use, on hosts other users share
(docs/architecture.md "Shared hosts"). A fixed name under /tmp is a name
another user can take first: every directory the harness keeps at a fixed
path is made here, 0700, and checked before use (ours, not a symlink, closed
to others), under a parent that no other user can write (or a sticky one,
like /tmp, where nobody may rename or remove what is ours)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from pathlib import Path

from harness.errors import UserError

CLOSED = 0o077  # no bit for group or others


def runtime_root() -> Path:
    """Where per-user runtime state lives: $XDG_RUNTIME_DIR (the user's own,
    made by logind), /run for root, else the temporary directory (whose
    entries are then checked one by one)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base:
        return Path(base)
    if os.geteuid() == 0 and Path("/run").is_dir():
        return Path("/run")
    return Path(tempfile.gettempdir())


def user_scoped(name: str) -> str:
    """`name` with the uid in it where several users share the parent."""
    shared = not os.environ.get("XDG_RUNTIME_DIR") and runtime_root() != Path("/run")
    return f"{name}-{os.geteuid()}" if shared else name


def problem_with(path: Path, st: os.stat_result) -> str | None:
    """Why `path` (its lstat) is no private directory of ours, or None."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a directory"
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to uid {os.geteuid()}"
    if st.st_mode & CLOSED:
        return f"is open to others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def foreign(path: Path, sticky_ok: bool = False) -> str | None:
    """Why another user could have put things in `path` (it is not ours, or
    others may write it), or None, also when it is missing. `sticky_ok`: a
    parent of ours or root's that is sticky (others may add, never replace)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if sticky_ok and st.st_uid in (0, os.geteuid()) and st.st_mode & stat.S_ISVTX:
        return None
    if st.st_uid != os.geteuid():
        return f"belongs to uid {st.st_uid}, not to uid {os.geteuid()}"
    if stat.S_IMODE(st.st_mode) & 0o022 and not stat.S_ISLNK(st.st_mode):
        return f"is writable by others (mode {stat.S_IMODE(st.st_mode):o})"
    return None


def check_parents(path: Path) -> None:
    """No ancestor of `path` lets another user swap what is below it: each is
    ours or root's, and one that others may write is sticky. A missing one is
    made, 0700: then it is ours."""
    for parent in reversed(path.parents):
        with contextlib.suppress(FileExistsError):
            os.mkdir(parent, 0o700)
    resolved = Path(os.path.realpath(path.parent))
    for parent in [*reversed(path.parents), *reversed(resolved.parents), resolved]:
        st = os.lstat(parent)
        if st.st_uid not in (0, os.geteuid()):
            raise UserError(
                f"{parent} belongs to uid {st.st_uid}: the harness keeps nothing under it; "
                "use a directory of your own (runtime files: set XDG_RUNTIME_DIR)"
            )
        if stat.S_ISLNK(st.st_mode):
            continue  # root's or ours (above); its target is in the resolved chain
        writable = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if writable and not st.st_mode & stat.S_ISVTX:
            raise UserError(
                f"{parent} is writable by others and not sticky: the harness keeps nothing "
                "under it; use a directory of your own (runtime files: set XDG_RUNTIME_DIR)"
            )


def private_dir(path: Path) -> Path:
    """`path` as a directory only we may use: made 0700 if missing, else
    refused in one line (what is wrong, what to remove) unless it is ours,
    not a symlink and closed to others."""
    check_parents(path)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and st.st_mode & CLOSED:
        os.chmod(path, 0o700)  # ours, made before the harness closed them: close it
        st = os.lstat(path)
    problem = problem_with(path, st)
    if problem:
        raise UserError(f"{path} {problem}: remove it (rm -rf {path}) and run again")
    return path


def lock_is_held(path: Path) -> bool:
    """Does a live process hold this flock? (a missing file: nobody does) The
    owners of run directories, socket directories and cached images in use
    hold theirs for their lives: a lock, unlike a pid, is seen across PID
    namespaces, and the kernel frees it when its holder dies."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes) -> None:
    """`data` in a file only we may read (0600), never through a symlink."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an older file of ours keeps no wider mode
        f.write(data)


PRIVATE_UMASK = 0o077  # what the harness writes is its user's alone...


def write_shared(path: Path, text: str) -> Path:
    """...but for what a user shares on purpose (a report, a chart): a file
    every local user may read, in the artifacts directory, which they may enter."""
    path.write_text(text)
    share(path, with_directory=True)
    return path


def share(path: Path, with_directory: bool = False) -> None:
    """Make a file readable by every local user, and (`with_directory`: only a
    directory the harness made for it, never one the user named) its directory
    enterable, if it is ours."""
    path.chmod(0o644)
    if not with_directory:
        return
    st = path.parent.stat()
    if st.st_uid == os.geteuid():
        with contextlib.suppress(OSError):
            path.parent.chmod(stat.S_IMODE(st.st_mode) | 0o755)
