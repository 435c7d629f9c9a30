"""Host ports for forwards: free on 127.0.0.1 and reserved by a lock file, so
concurrent machines and pytest-xdist workers never pick the same one. The
lock is held for the machine's life; QEMU binding the port is the final
check, and a lost race is retried by the caller. The locks live in a
directory private to the user (harness.private), and are never opened
through a link."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from harness.errors import HarnessError
from harness.private import private_dir, runtime_root, user_scoped


def lock_dir() -> Path:
    """The user's lock directory: made private, or refused in one line."""
    return private_dir(runtime_root() / user_scoped("kubesolo-harness-ports"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortReservation:
    """A port held by an exclusive flock on <lock directory>/<port>."""

    def __init__(self, port: int, fd: int) -> None:
        self.port = port
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def try_reserve(port: int, directory: Path | None = None) -> PortReservation | None:
    """The port's lock, if no other process holds it; a lock file that is a
    link is never followed (that port is not taken)."""
    path = (directory or lock_dir()) / str(port)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return PortReservation(port, fd)


def reserve_port(directory: Path | None = None, attempts: int = 200) -> PortReservation:
    """A free port that no other harness process of this user holds."""
    directory = directory or lock_dir()
    for _ in range(attempts):
        reservation = try_reserve(free_port(), directory)
        if reservation:
            return reservation
    raise HarnessError("no free 127.0.0.1 port could be reserved")
