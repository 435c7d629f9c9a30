"""The pexpect object on a console: it reads the byte log from a cursor (nothing it
reads is taken from the waits), types with a serial line's Enter, and hands the
console to a person until Ctrl-]."""

import os
import socket
import threading

import pexpect
import pytest

from harness.vm.console import Console
from harness.vm.console_session import ConsoleSession


@pytest.fixture
def wired(tmp_path):
    """A console fed by one end of a socket pair; the other end plays the target."""
    host, target = socket.socketpair()
    console = Console(tmp_path / "console.log")
    console.attach(host)
    yield console, target
    target.close()
    console.close()


def test_sendline_and_expect_like_a_person(wired):
    console, target = wired
    target.sendall(b"boot log\r\n(kubesolo-shell) # ")
    session = ConsoleSession(console, since=0, timeout=5)
    assert session.expect([r"\(kubesolo-shell\) # ", "Kernel panic"]) == 0
    session.sendline("echo $((6 * 7))")
    assert target.recv(100) == b"echo $((6 * 7))\r"
    target.sendall(b"echo $((6 * 7))\r\n42\r\n(kubesolo-shell) # ")
    session.expect(r"\(kubesolo-shell\) # ")
    assert "42" in session.before


def test_the_log_stays_the_record(wired):
    console, target = wired
    target.sendall(b"one\r\ntwo\r\n")
    session = ConsoleSession(console, since=0, timeout=5)
    session.expect("two")
    # what the session read is still in the log, for waits from any cursor
    assert console.wait_for("one", timeout=1, since=0)
    later = ConsoleSession(console, since=console.cursor(), timeout=0.3)
    with pytest.raises(pexpect.TIMEOUT):
        later.expect("one")


def test_eof_when_the_console_closes(wired):
    console, target = wired
    session = ConsoleSession(console, since=0, timeout=5)
    target.close()
    with pytest.raises(pexpect.EOF):
        session.expect("never")


def test_interact_until_ctrl_bracket(wired):
    console, target = wired
    keys_r, keys_w = os.pipe()
    screen_r, screen_w = os.pipe()
    target.sendall(b"login prompt\r\n")
    session = ConsoleSession(console, since=0, timeout=5)
    os.write(keys_w, b"ls\r")
    done = threading.Thread(
        target=session.interact, kwargs={"input_fd": keys_r, "output_fd": screen_w}
    )
    done.start()
    assert target.recv(100) == b"ls\r"
    os.write(keys_w, b"x\x1d")
    done.join(timeout=5)
    assert not done.is_alive()
    assert target.recv(100) == b"x"
    assert os.read(screen_r, 100) == b"login prompt\r\n"
