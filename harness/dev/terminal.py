"""The dev VM on your terminal: the serial console in raw mode, and an escape
key (Ctrl-]) that opens a one-line menu of power and port actions."""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import socket
import sys
import termios
import threading
import tty
from collections.abc import Iterator

from harness.dev.server import request
from harness.dev.session import Session
from harness.errors import HarnessError

ESCAPE = b"\x1d"  # Ctrl-], as telnet's
# key -> (server command, what the menu says); None: handled here
MENU: dict[bytes, tuple[str | None, str]] = {
    b"r": ("reboot", "reboot"),
    b"R": ("reset", "hard reset"),
    b"O": ("shutdown", "shut down"),
    b"o": ("poweroff", "power off"),
    b"p": ("poweron", "power on"),
    b"f": ("forward", "add a port forward"),
    b"s": ("snapshot", "save a snapshot"),
    b"d": (None, "detach (the VM keeps running)"),
    b"q": ("stop", "quit (stop the VM)"),
}
MENU_LINE = "[dev] " + " · ".join(f"{k.decode()} {what}" for k, (_, what) in MENU.items())


def forward_argument(text: str) -> dict[str, int]:
    """parse_forward for argparse: a bad value is its usage error."""
    try:
        return parse_forward(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_forward(text: str) -> dict[str, int]:
    """`HOST:GUEST` or `GUEST` (any free host port) as a forward request."""
    host, _, guest_port = text.strip().rpartition(":")
    try:
        return {"host": int(host or 0), "guest": int(guest_port)}
    except ValueError:
        raise ValueError(f"{text.strip()!r}: write HOST:GUEST or GUEST, e.g. 8080:80") from None


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Keys go to the guest as typed (Ctrl-C included) until we leave."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error, OSError):  # a terminal that hung up
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Terminal:
    def __init__(self, session: Session, stdin: int = 0, stdout: int = 1) -> None:
        self.session = session
        self.stdin, self.stdout = stdin, stdout

    def say(self, text: str) -> None:
        os.write(self.stdout, f"\r\n{text}\r\n".encode())

    def run(self) -> str:
        """Relay until the menu's detach or quit, the end of our input or the
        server's end: returns "detach", "quit", "eof" or "closed"."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as console:
            console.connect(str(self.session.console_sock))
            self.say(f"[dev] {self.session.name}: the serial console; Ctrl-] for the menu")
            with raw_terminal(self.stdin):
                return self._relay(console)

    def _relay(self, console: socket.socket) -> str:
        while True:
            ready, _, _ = select.select([console.fileno(), self.stdin], [], [])
            if console.fileno() in ready:
                data = console.recv(65536)
                if not data:
                    self.say("[dev] the VM has stopped")
                    return "closed"
                os.write(self.stdout, data)
            if self.stdin in ready:
                keys = os.read(self.stdin, 4096)
                if not keys:
                    return "eof"
                typed, escape, _ = keys.partition(ESCAPE)
                if typed:
                    console.sendall(typed)
                if escape and (outcome := self._menu()):
                    return outcome

    def _menu(self) -> str | None:
        self.say(MENU_LINE)
        key = os.read(self.stdin, 1)
        if key not in MENU:
            self.say("[dev] back to the console")
            return None
        op, what = MENU[key]
        if op is None:
            try:
                request(self.session, "detach")
            except HarnessError as err:
                self.say(f"[dev] detach failed: {err}")
                return None
            self.say(f"[dev] detached: `kubesolo-harness dev --attach {self.session.name}`")
            return "detach"
        args: dict = {}
        if op == "forward":
            try:
                args = parse_forward(self._line("[dev] forward HOST:GUEST (or GUEST): "))
            except ValueError as err:
                self.say(f"[dev] {err}")
                return None
        if op == "stop":
            self._ask(op, what, args)
            return "quit"
        threading.Thread(target=self._ask, args=(op, what, args), daemon=True).start()
        return None

    def _ask(self, op: str, what: str, args: dict) -> None:
        self.say(f"[dev] {what} ...")
        try:
            reply = request(self.session, op, **args)
            self.say(
                f"[dev] {what}: {reply['message']}"
                if reply["ok"]
                else f"[dev] {what} failed: {reply['message']}"
            )
        except HarnessError as err:
            self.say(f"[dev] {what}: {err}")

    def _line(self, prompt: str) -> str:
        """A line typed in raw mode, echoed; Enter ends it."""
        os.write(self.stdout, prompt.encode())
        line = b""
        while (key := os.read(self.stdin, 1)) not in (b"\r", b"\n", b""):
            if key in (b"\x7f", b"\b"):
                if line:
                    line = line[:-1]
                    os.write(self.stdout, b"\b \b")
                continue
            line += key
            os.write(self.stdout, key)
        return line.decode(errors="replace")


def attach(name: str) -> str:
    return Terminal(Session(name), sys.stdin.fileno(), sys.stdout.fileno()).run()
