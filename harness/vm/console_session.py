"""A pexpect object on a target's live serial console, for the moments a
person would type at it (a shell prompt, the bootloader's `boot:`): sendline,
expect, interact. It reads the console's byte log from a cursor instead of
the line itself, so the log stays the one record of truth and nothing read
here is lost to the waits (docs/architecture.md "Console")."""

from __future__ import annotations

import contextlib
import os
import select
import termios
import tty
from typing import Any

import pexpect
from pexpect.spawnbase import SpawnBase

from harness.vm.console import Console, ConsoleClosed

SERIAL_LINESEP = "\r"  # what a terminal sends for Enter on a serial line
ESCAPE = "\x1d"  # Ctrl-]: leaves interact(), as in telnet


class ConsoleSession(SpawnBase):  # type: ignore[misc]
    """pexpect on a Console: `expect` sees every byte after `since`."""

    def __init__(self, console: Console, since: int, timeout: float = 60, **kwargs: Any) -> None:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("codec_errors", "replace")
        super().__init__(timeout=timeout, maxread=65536, **kwargs)
        self.linesep = SERIAL_LINESEP
        self.console = console
        self.cursor = since  # the next console byte this session reads
        self.child_fd = -1
        self.closed = False
        self.name = f"<console {console.log_path}>"

    def read_nonblocking(self, size: int = 1, timeout: float | None = -1) -> Any:
        if timeout == -1:
            timeout = self.timeout
        try:
            data = self.console.read(self.cursor, size, 0 if timeout is None else timeout)
        except ConsoleClosed:
            self.flag_eof = True
            raise pexpect.EOF("the console closed (the target is off)") from None
        if not data:
            raise pexpect.TIMEOUT(f"nothing new on the console within {timeout}s")
        self.cursor += len(data)
        text = self._decoder.decode(data, final=False)
        self._log(text, "read")
        return text

    def send(self, s: str | bytes) -> int:
        data = self._encoder.encode(s, final=False) if isinstance(s, str) else s
        self._log(s, "send")
        self.console.send(data)
        return len(data)

    def sendline(self, s: str = "") -> int:
        return self.send(s + self.linesep)

    def isalive(self) -> bool:
        return not self.flag_eof

    def close(self) -> None:
        self.closed = True

    def interact(
        self, escape_character: str = ESCAPE, input_fd: int = 0, output_fd: int = 1
    ) -> None:
        """Hand the console to a person: keys go to the target, its output to the
        terminal, until the escape character (Ctrl-] by default)."""
        saved = termios.tcgetattr(input_fd) if os.isatty(input_fd) else None
        if saved is not None:
            tty.setraw(input_fd)
        try:
            while True:
                data = self.console.read(self.cursor, 65536, 0.05)
                self.cursor += len(data)
                if data:
                    os.write(output_fd, data)
                ready, _, _ = select.select([input_fd], [], [], 0)
                if not ready:
                    continue
                keys = os.read(input_fd, 1024)
                if not keys:
                    return
                escape = escape_character.encode()
                if escape in keys:
                    before = keys.split(escape, 1)[0]
                    if before:
                        self.console.send(before)
                    return
                self.console.send(keys)
        except ConsoleClosed:
            return
        finally:
            if saved is not None:
                with contextlib.suppress(termios.error):
                    termios.tcsetattr(input_fd, termios.TCSAFLUSH, saved)
