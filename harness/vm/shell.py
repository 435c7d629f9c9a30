"""Host side of the test shell (test-flavour images, build/flavours/test):
a command channel on a virtio serial port (QEMU) or a serial line (a board's
second UART, kubesolo.testshell=ttyS1), framed so that exit status and output
bytes arrive exact whatever the command prints, and so that a real UART
carries it: only 7-bit text in short lines, checksums both ways, and a
header regex to resync after line noise (docs/architecture.md "Test shell").

Request:  "\\nKSH-REQ <id> <timeout> <md5>\\n" + base64 lines + "KSH-END <id>\\n"
Reply:    "KSH-RESULT <id> <status> <stdout-len> <stderr-len> <md5>\\n"
          + base64 lines of stdout and stderr + "KSH-END <id>\\n" (other
          lines between them are another writer's and are skipped),
          or "KSH-GARBLED <id>\\n" when the request arrived damaged (not run)
On start: "KSH-READY <boot-id>\\n" (once per guest boot).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from harness.errors import HarnessError, HarnessTimeout

LINE_CHARS = 76  # base64 characters per line: what `base64` writes, short for any UART
GARBLED_RETRIES = 3  # a damaged request did not run: send it again
READY = re.compile(rb"KSH-READY (\S+)\r?\n")
RESULT = re.compile(rb"KSH-RESULT (\d+) (\d+) (\d+) (\d+) ([0-9a-f]{32})\r?\n")
GARBLED = re.compile(rb"KSH-GARBLED (\d+)\r?\n")
END = b"KSH-END %d"
BASE64_LINE = re.compile(rb"^([A-Za-z0-9+/=]+)\r?$", re.M)


class ByteStream(Protocol):
    """What the shell and the console read and write: a connected socket, or
    a serial line wrapped to look like one (harness.lab)."""

    def recv(self, size: int, /) -> bytes: ...
    def sendall(self, data: bytes, /) -> None: ...
    def shutdown(self, how: int, /) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Result:
    status: int
    stdout: bytes
    stderr: bytes


class ShellError(HarnessError):
    """The test shell's channel broke (QEMU exited, the guest rebooted mid-command)."""


class ShellTimeout(ShellError, HarnessTimeout):
    """The test shell did not start, or a command did not answer, in time."""


class ShellGarbled(ShellError):
    """A frame arrived damaged on the line (its checksum or base64 is wrong)."""


class RequestGarbled(ShellGarbled):
    """The guest got a damaged request and did not run it: it can be sent again."""


def _lines(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + LINE_CHARS] + b"\n" for i in range(0, len(encoded), LINE_CHARS))


def encode_request(request_id: int, script: str, timeout: float) -> bytes:
    data = script.encode()
    digest = hashlib.md5(data).hexdigest()
    # the leading newline ends whatever line noise the guest has half read
    header = f"\nKSH-REQ {request_id} {max(1, int(timeout))} {digest}\n".encode()
    return header + _lines(data) + END % request_id + b"\n"


def parse_reply(buffer: bytes, request_id: int) -> tuple[Result | None, bytes]:
    """(the reply to request_id if complete, the rest of the buffer). Anything
    before a header (line noise, a stale reply, a READY line) is dropped.
    Raises ShellGarbled when the guest says the request arrived damaged, or
    when the reply's bytes do not match its lengths and checksum."""
    while True:
        match = RESULT.search(buffer)
        garbled = GARBLED.search(buffer)
        if garbled and (not match or garbled.start() < match.start()):
            buffer = buffer[garbled.end() :]
            if int(garbled.group(1)) == request_id:
                raise RequestGarbled(f"request {request_id} arrived garbled in the guest")
            continue
        if not match:
            return None, buffer
        rid, status, out_len, err_len = (int(g) for g in match.groups()[:4])
        end = re.compile(rb"(?:^|\n)" + re.escape(END % rid) + rb"\r?\n")
        tail = end.search(buffer, match.end() - 1)
        if not tail:
            return None, buffer[match.start() :]
        body = buffer[match.end() : tail.start()]
        buffer = buffer[tail.end() :]
        if rid != request_id:
            continue
        return _decode(body, status, out_len, err_len, match.group(5).decode()), buffer


def _decode(body: bytes, status: int, out_len: int, err_len: int, digest: str) -> Result:
    # lines that are not base64 are another writer's (the boot's messages,
    # where the test shell shares the console's line): not part of the reply
    encoded = b"".join(BASE64_LINE.findall(body))
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ShellGarbled("the guest's reply arrived garbled (not base64)") from None
    if len(data) != out_len + err_len or hashlib.md5(data).hexdigest() != digest:
        raise ShellGarbled(
            f"the guest's reply arrived garbled ({len(data)} bytes, "
            f"{out_len + err_len} announced, or a checksum mismatch)"
        )
    return Result(status, data[:out_len], data[out_len:])


class GuestShell:
    """A connection to the guest's test shell (QEMU's chardev socket, or a
    serial line that looks like one)."""

    def __init__(self, sock: ByteStream) -> None:
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

    def assume_ready(self, boot_id: str) -> None:
        """A restored guest's READY line came before its snapshot: count it."""
        with self._cond:
            self._boots.append(boot_id)
            self._cond.notify_all()

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
            for attempt in range(GARBLED_RETRIES):
                try:
                    return self._run_once(script, timeout)
                except RequestGarbled:
                    if attempt == GARBLED_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")

    def _run_once(self, script: str, timeout: float) -> Result:
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
