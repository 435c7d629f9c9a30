"""The serial console's transport: two pipes, QEMU's stdin and stdout, not a socket.

QEMU's 16550 drops a byte when its backend cannot take it and the guest's
driver stops waiting (a few milliseconds). A unix socket holds only a few
hundred one-byte writes, so a reader that stalls for a moment under load lost
bytes from the middle of a line (docs/architecture.md "Console"). A pipe
holds a megabyte of them, and an inherited pipe has no path anyone could
connect to."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import select
from collections.abc import Iterator

CAPACITY = 1 << 20  # bytes the guest may print while the reader is away

# QEMU's console: the serial port on QEMU's own stdin and stdout, which are
# the pipes; signal=off, so that a byte typed is never a signal to QEMU.
CHARDEV_ARGS = ("-chardev", "stdio,id=con0,signal=off", "-serial", "chardev:con0")


class ConsolePipes:
    """Both pipes: QEMU's ends (`stdin`, `stdout`: given to it, then closed
    here) and the harness's, read as a ByteStream by harness.vm.console."""

    def __init__(self) -> None:
        self._out_r, self.stdout = os.pipe()
        self.stdin, self._in_w = os.pipe()
        self._wake_r, self._wake_w = os.pipe()
        with contextlib.suppress(OSError):  # above the user's pipe-max-size: the default
            fcntl.fcntl(self.stdout, fcntl.F_SETPIPE_SZ, CAPACITY)
        self._closed = False

    @contextlib.contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Starting QEMU: if that fails, no descriptor is left open."""
        try:
            yield
        except BaseException:
            self.close()
            raise

    def started(self) -> None:
        """QEMU holds its ends now: close them here, so that its exit is our EOF."""
        self._close(self.stdin, self.stdout)
        self.stdin = self.stdout = -1

    @staticmethod
    def _close(*fds: int) -> None:
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    # -- the ByteStream -------------------------------------------------------
    def recv(self, size: int, /) -> bytes:
        """Up to `size` bytes the guest printed; b"" once QEMU exited, or when
        `shutdown` was called and nothing is left to read."""
        if self._closed:
            raise OSError(errno.EBADF, "the console's pipes are closed")
        poller = select.poll()
        poller.register(self._out_r, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        ready = {fd for fd, _ in poller.poll()}
        if self._out_r in ready:  # what the guest printed first, even when woken
            return os.read(self._out_r, size)
        return b""

    def sendall(self, data: bytes, /) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "the console's pipes are closed")
        view = memoryview(data)
        while view:
            view = view[os.write(self._in_w, view) :]

    def shutdown(self, how: int, /) -> None:
        """Wake a reader blocked in `recv`: it returns b"" once the pipe is empty."""
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close(self._out_r, self._in_w, self._wake_r, self._wake_w, self.stdin, self.stdout)
        self._out_r = self._in_w = self._wake_r = self._wake_w = self.stdin = self.stdout = -1
