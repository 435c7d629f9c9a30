"""Host ports for forwards: free on 127.0.0.1 and reserved by a lock file, so
concurrent machines and pytest-xdist workers never pick the same one. The
lock is held for the machine's life; QEMU binding the port is the final
check, and a lost race is retried by the caller."""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
from pathlib import Path

from harness.errors import HarnessError

LOCK_DIR = Path(tempfile.gettempdir()) / "kubesolo-harness-ports"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortReservation:
    """A port held by an exclusive flock on LOCK_DIR/<port>."""

    def __init__(self, port: int, fd: int) -> None:
        self.port = port
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def try_reserve(port: int, lock_dir: Path = LOCK_DIR) -> PortReservation | None:
    lock_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_dir / str(port), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return PortReservation(port, fd)


def reserve_port(lock_dir: Path = LOCK_DIR, attempts: int = 200) -> PortReservation:
    """A free port that no other harness process holds."""
    for _ in range(attempts):
        reservation = try_reserve(free_port(), lock_dir)
        if reservation:
            return reservation
    raise HarnessError("no free 127.0.0.1 port could be reserved")
