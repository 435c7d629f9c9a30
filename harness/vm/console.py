"""The serial console: every byte captured to console.log from the first one,
kept across guest reboots, read through cursors (byte offsets), and scanned
as it streams in against a table of failure patterns so that a broken boot
fails in seconds instead of at a timeout."""

from __future__ import annotations

import codecs
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import GuestAssertion, HarnessTimeout, MachineNotRunning, UserError
from harness.guest import ERROR_MARKER, KUBESOLO_GAVE_UP, KUBESOLO_RESTART
from harness.vm.shell import ByteStream

# Console text keeps one character per byte that is not UTF-8 (a firmware's
# box drawing): U+FFFD for each, so that a character's place in the text is
# its byte's place in the log as surrogateescape counts it (byte_offset).
ONE_PER_BYTE = "kubesolo-one-per-byte"


def _one_per_byte(err: UnicodeError) -> tuple[str, int]:
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error(ONE_PER_BYTE, _one_per_byte)


@dataclass(frozen=True)
class FailurePattern:
    name: str  # what a test names to allow it (MachineConfig.allow_failures)
    description: str
    regex: re.Pattern[str]


def _pattern(name: str, description: str, regex: str) -> FailurePattern:
    return FailurePattern(name, description, re.compile(regex, re.M))


# kola-style table: what on a console means the boot has failed. The give-up
# comes before the stage error its line also is, so that it is named.
FAILURE_PATTERNS: tuple[FailurePattern, ...] = (
    _pattern("kernel-panic", "kernel panic", r"Kernel panic - not syncing"),
    _pattern("init-died", "init died", r"Attempted to kill init"),
    _pattern("kernel-oops", "kernel oops", r"^(?:\[[ \d.]+\] )?Oops: "),
    _pattern("kernel-bug", "kernel BUG", r"^(?:\[[ \d.]+\] )?(?:kernel )?BUG: "),
    _pattern("kubesolo-gave-up", "init gave up on KubeSolo", KUBESOLO_GAVE_UP),
    _pattern("stage-error", "init stage error", ERROR_MARKER),
    _pattern("kubesolo-flags", "KubeSolo rejected its command line", r"^kubesolo: error: .*"),
)
# What a console shows that a failure report should mention, though the
# node goes on: init's supervisor starts KubeSolo again after each.
WARNING_PATTERNS: tuple[FailurePattern, ...] = (
    _pattern("kubesolo-restart", "KubeSolo exited and was restarted", KUBESOLO_RESTART),
    _pattern(
        "kubesolo-shutdown", "KubeSolo shut down early", r"shutdown requested before \S+ was ready"
    ),
)
FAILURE_NAMES = frozenset(p.name for p in FAILURE_PATTERNS)


def failures_except(allowed: Iterable[str]) -> tuple[FailurePattern, ...]:
    """The failure patterns a wait watches when the names in `allowed` are expected;
    an unknown name is an error, so a typo cannot silently allow nothing."""
    allowed = frozenset(allowed)
    unknown = allowed - FAILURE_NAMES
    if unknown:
        raise UserError(
            f"unknown failure pattern {', '.join(sorted(unknown))}: "
            f"use {', '.join(sorted(FAILURE_NAMES))}"
        )
    return tuple(p for p in FAILURE_PATTERNS if p.name not in allowed)


def find_failure(
    text: str, patterns: Iterable[FailurePattern] = FAILURE_PATTERNS
) -> tuple[FailurePattern, re.Match[str]] | None:
    """The earliest failure in `text`, if any."""
    found = [(m.start(), p, m) for p in patterns if (m := p.regex.search(text))]
    if not found:
        return None
    _, pattern, match = min(found, key=lambda f: f[0])
    return pattern, match


def find_warnings(text: str) -> list[tuple[FailurePattern, re.Match[str]]]:
    """Every warning in `text` (WARNING_PATTERNS), in console order."""
    found = [(m.start(), p, m) for p in WARNING_PATTERNS for m in p.regex.finditer(text)]
    return [(pattern, match) for _, pattern, match in sorted(found, key=lambda f: f[0])]


class ConsoleTimeout(HarnessTimeout):
    """A console wait ran out."""


class ConsoleClosed(MachineNotRunning, EOFError):
    """QEMU exited (the console closed) before the wait was satisfied."""


class Console:
    """A growing byte buffer fed by a reader thread from QEMU's serial port,
    mirrored to a log file. Cursors are offsets into the buffer."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._buf = bytearray()
        self._arrivals: list[tuple[int, float]] = []  # (end offset, monotonic time)
        self._cond = threading.Condition()
        self._closed = False
        self._sock: ByteStream | None = None
        self._thread: threading.Thread | None = None

    # -- feeding --------------------------------------------------------------
    def attach(self, sock: ByteStream) -> None:
        """Feed from `sock`: QEMU's socket, or a board's serial line (harness.lab)."""
        self._sock = sock
        self._thread = threading.Thread(target=self._pump, name="console", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        assert self._sock is not None
        with self.log_path.open("ab", buffering=0) as log:
            while True:
                try:
                    chunk = self._sock.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                log.write(chunk)
                self.feed(chunk)
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def feed(self, chunk: bytes) -> None:
        with self._cond:
            self._buf += chunk
            self._arrivals.append((len(self._buf), time.monotonic()))
            self._cond.notify_all()

    def snapshot(self) -> tuple[bytes, list[tuple[int, float]]]:
        """The bytes so far and when they arrived."""
        with self._cond:
            return bytes(self._buf), list(self._arrivals)

    def preload(self, data: bytes, arrivals: list[tuple[int, float]]) -> None:
        """Start from a snapshot's console: its bytes, arrived at `arrivals`
        (end offset, seconds relative to now)."""
        now = time.monotonic()
        with self._cond:
            self._buf = bytearray(data)
            self._arrivals = [(end, now + rel) for end, rel in arrivals]
        with self.log_path.open("ab") as log:  # the log stays the whole record
            log.write(data)

    def reopened(self) -> Console:
        """A fresh, unattached Console holding this one's bytes and log file:
        cursors stay valid across a restart of QEMU."""
        fresh = Console(self.log_path)
        data, fresh._arrivals = self.snapshot()
        fresh._buf = bytearray(data)
        return fresh

    def close(self) -> None:
        """Wake the reader, let it finish, then close the stream: it never
        reads a closed descriptor."""
        if self._sock:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        if self._thread:
            self._thread.join(timeout=5)
        if self._sock:
            self._sock.close()
            self._sock = None  # a send after this is ConsoleClosed, not a recycled descriptor
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reading --------------------------------------------------------------
    def cursor(self) -> int:
        with self._cond:
            return len(self._buf)

    def text(self, since: int = 0) -> str:
        with self._cond:
            return self._buf[since:].decode(errors=ONE_PER_BYTE)

    def byte_offset(self, since: int, chars: int) -> int:
        """The log offset of character `chars` of text(since): a match's end as
        a cursor (a U+FFFD in the text stood for one byte, not three)."""
        with self._cond:
            raw = bytes(self._buf[since:])
        prefix = raw.decode(errors="surrogateescape")[:chars]
        return since + len(prefix.encode(errors="surrogateescape"))

    def tail(self, lines: int = 40, since: int = 0) -> str:
        return "\n".join(self.text(since).replace("\r", "").splitlines()[-lines:])

    def read(self, since: int, size: int, timeout: float) -> bytes:
        """Up to `size` bytes after `since`, waiting up to `timeout` seconds for
        the first (b"" then); ConsoleClosed once the console closed with nothing
        more to read."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._buf) <= since:
                if self._closed:
                    raise ConsoleClosed("console closed (the target is off)")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return b""
                self._cond.wait(remaining)
            return bytes(self._buf[since : since + size])

    def send(self, data: bytes) -> None:
        if not self._sock:
            raise ConsoleClosed("console is not connected")
        self._sock.sendall(data)

    def wait_for(
        self,
        regex: str | re.Pattern[str],
        timeout: float,
        since: int = 0,
        failures: Iterable[FailurePattern] = FAILURE_PATTERNS,
    ) -> re.Match[str]:
        """The first match of `regex` after `since`. Raises BootFailure when a
        failure pattern shows up first, ConsoleTimeout at the deadline."""
        pattern = re.compile(regex, re.M) if isinstance(regex, str) else regex
        failures = tuple(failures)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._buf[since:].decode(errors=ONE_PER_BYTE)
                match = pattern.search(text)
                failure = find_failure(text, failures)
                if failure and (not match or failure[1].start() < match.start()):
                    raise BootFailure(
                        failure[0].description, failure[1].group(), self.tail(since=since)
                    )
                if match:
                    return match
                if self._closed:
                    raise ConsoleClosed(
                        f"console closed (QEMU exited) before /{pattern.pattern}/\n"
                        f"--- console tail ---\n{self.tail(since=since)}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ConsoleTimeout(
                        f"no /{pattern.pattern}/ on the console within {timeout:.0f}s\n"
                        f"--- console tail ---\n{self.tail(since=since)}"
                    )
                self._cond.wait(min(remaining, 1.0))


class BootFailure(GuestAssertion):
    """The console showed a failure pattern; carries the console tail."""

    def __init__(self, description: str, line: str, tail: str) -> None:
        self.description = description
        self.line = line
        self.tail = tail
        super().__init__(f"{description}: {line}\n--- console tail ---\n{tail}")
