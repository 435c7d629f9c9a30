"""Test-shell framing: exact status and bytes, stale replies dropped."""

import base64
import socket
import threading

import pytest

from harness.vm import shell


def test_request_carries_id_timeout_and_base64_script():
    line = shell.encode_request(7, "echo 'a b'\nexit 3", 30)
    rid, timeout, payload = line.decode().split()
    assert (rid, timeout) == ("7", "30")
    assert base64.b64decode(payload).decode() == "echo 'a b'\nexit 3"
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_reply_with_binary_output_and_no_trailing_newline():
    out = bytes(range(256)) + b"KSH-RESULT 9 9 9 9\n"  # looks like a header, is data
    buffer = b"KSH-RESULT 3 1 %d 3\n" % len(out) + out + b"err"
    result, rest = shell.parse_reply(buffer, 3)
    assert result == shell.Result(1, out, b"err")
    assert rest == b""


def test_incomplete_reply_waits_for_more_bytes():
    buffer = b"KSH-RESULT 3 0 10 0\n12345"
    result, rest = shell.parse_reply(buffer, 3)
    assert result is None and rest == buffer


def test_stale_replies_of_earlier_requests_are_skipped():
    buffer = b"KSH-RESULT 1 0 2 0\nhiKSH-RESULT 2 0 3 0\nyes"
    result, _ = shell.parse_reply(buffer, 2)
    assert result == shell.Result(0, b"yes", b"")


class FakeGuest:
    """Plays the guest side of the protocol over a socket pair."""

    def __init__(self):
        self.host, self.guest = socket.socketpair()
        self.guest.sendall(b"KSH-READY boot-1\n")

    def answer(self, status: int, out: bytes) -> None:
        request = b""
        while not request.endswith(b"\n"):
            request += self.guest.recv(4096)
        rid = request.split()[0]
        self.guest.sendall(b"KSH-RESULT %s %d %d 0\n" % (rid, status, len(out)) + out)


def test_round_trip_over_a_socket_with_one_mebibyte():
    guest = FakeGuest()
    client = shell.GuestShell(guest.host)
    assert client.wait_ready(1, timeout=5) == "boot-1"
    payload = bytes(range(256)) * 4096
    threading.Thread(target=guest.answer, args=(0, payload)).start()
    assert client.run("cat big", timeout=10) == shell.Result(0, payload, b"")
    client.close()


def test_a_reboot_while_running_is_reported():
    guest = FakeGuest()
    client = shell.GuestShell(guest.host)
    client.wait_ready(1, timeout=5)
    threading.Timer(0.2, lambda: guest.guest.sendall(b"KSH-READY boot-2\n")).start()
    with pytest.raises(shell.ShellError, match="rebooted"):
        client.run("sleep 100", timeout=10)


def test_no_ready_line_times_out_clearly():
    host, _guest = socket.socketpair()
    client = shell.GuestShell(host)
    with pytest.raises(shell.ShellTimeout, match="test-flavour"):
        client.wait_ready(1, timeout=0.3)
