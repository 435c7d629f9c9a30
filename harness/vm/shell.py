"""Host side of the test shell (test-flavour images, build/flavours/test):
a command channel on a virtio serial port, framed so that exit status and
output bytes arrive exact whatever the command prints.

Request:  "<id> <timeout> <base64 script>\\n"
Reply:    "KSH-RESULT <id> <status> <stdout-len> <stderr-len>\\n" + stdout + stderr
On start: "KSH-READY <boot-id>\\n" (once per guest boot).
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
import threading
import time
from dataclasses import dataclass

from harness.errors import HarnessError, HarnessTimeout

READY = re.compile(rb"KSH-READY (\S+)\n")
RESULT = re.compile(rb"KSH-RESULT (\d+) (\d+) (\d+) (\d+)\n")


@dataclass(frozen=True)
class Result:
    status: int
    stdout: bytes
    stderr: bytes


class ShellError(HarnessError):
    """The test shell's channel broke (QEMU exited, the guest rebooted mid-command)."""


class ShellTimeout(ShellError, HarnessTimeout):
    """The test shell did not start, or a command did not answer, in time."""


def encode_request(request_id: int, script: str, timeout: float) -> bytes:
    payload = base64.b64encode(script.encode()).decode()
    return f"{request_id} {max(1, int(timeout))} {payload}\n".encode()


def parse_reply(buffer: bytes, request_id: int) -> tuple[Result | None, bytes]:
    """(the reply to request_id if complete, the rest of the buffer). Bytes
    before the header (a stale reply, a READY line) are dropped."""
    while True:
        match = RESULT.search(buffer)
        if not match:
            return None, buffer
        rid, status, out_len, err_len = (int(g) for g in match.groups())
        end = match.end() + out_len + err_len
        if len(buffer) < end:
            return None, buffer[match.start() :]
        body = buffer[match.end() : end]
        buffer = buffer[end:]
        if rid == request_id:
            return Result(status, body[:out_len], body[out_len:]), buffer


class GuestShell:
    """A connection to the guest's test shell through QEMU's chardev socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._cond = threading.Condition()
        self._closed = False
        self._next_id = 1
        self._lock = threading.Lock()
        self._boots: list[str] = []
        threading.Thread(target=self._pump, name="test-shell", daemon=True).start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = self._sock.recv(1 << 20)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._closed = True
                    self._cond.notify_all()
                    return
                self._buf += chunk
                for match in READY.finditer(self._buf):
                    self._boots.append(match.group(1).decode())
                self._buf = READY.sub(b"", self._buf)
                self._cond.notify_all()

    def ready_count(self) -> int:
        with self._cond:
            return len(self._boots)

    def wait_ready(self, count: int, timeout: float) -> str:
        """Wait for the count-th READY (one per guest boot); its boot id."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._boots) < count:
                if self._closed:
                    raise ShellError("test shell channel closed (QEMU exited)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ShellTimeout(
                        f"the guest's test shell did not start within {timeout:.0f}s "
                        "(is this a test-flavour image?)"
                    )
                self._cond.wait(remaining)
            return self._boots[count - 1]

    def run(self, script: str, timeout: float) -> Result:
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
            boots = self.ready_count()
            with self._cond:
                self._buf = b""
            self._sock.sendall(encode_request(request_id, script, timeout))
            deadline = time.monotonic() + timeout + 10  # the guest kills at `timeout`
            with self._cond:
                while True:
                    result, self._buf = parse_reply(self._buf, request_id)
                    if result:
                        return result
                    if len(self._boots) > boots:
                        raise ShellError(f"the guest rebooted while running: {script[:80]}")
                    if self._closed:
                        raise ShellError("test shell channel closed (QEMU exited)")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ShellTimeout(f"no answer within {timeout:.0f}s to: {script[:80]}")
                    self._cond.wait(remaining)

    def send_detached(self, script: str) -> None:
        """Run a script whose answer will never come (reboot)."""
        with self._lock:
            self._sock.sendall(encode_request(0, script, 30))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
