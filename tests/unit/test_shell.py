"""Test-shell framing: exact status and bytes, 7-bit clean lines a UART carries,
stale replies and line noise skipped, damaged frames caught; and the guest's own
script speaking it over a real tty (a pty set raw, as on a board's UART)."""

import base64
import hashlib
import os
import pty
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.vm import shell

GUEST_SCRIPT = (
    Path(__file__).resolve().parents[2] / "build/flavours/test/usr/lib/kubesolo-os/bin/test-shell"
)


def reply(rid: int, status: int, out: bytes, err: bytes = b"", digest: str | None = None) -> bytes:
    data = out + err
    digest = digest or hashlib.md5(data).hexdigest()
    header = b"KSH-RESULT %d %d %d %d %s\n" % (rid, status, len(out), len(err), digest.encode())
    return header + shell._lines(data) + b"KSH-END %d\n" % rid


def test_request_is_short_7bit_lines_with_id_timeout_and_checksum():
    script = "echo 'a b'\nexit 3\n" + "x" * 500
    request = shell.encode_request(7, script, 30)
    assert request.startswith(b"\nKSH-REQ ")  # ends any half-read line noise first
    lines = request.decode("ascii").splitlines()[1:]
    kind, rid, timeout, digest = lines[0].split()
    assert (kind, rid, timeout) == ("KSH-REQ", "7", "30")
    assert digest == hashlib.md5(script.encode()).hexdigest()
    assert lines[-1] == "KSH-END 7"
    assert base64.b64decode("".join(lines[1:-1])).decode() == script
    assert max(len(line) for line in lines) <= 80
    assert all(32 <= b < 127 or b == 10 for b in request)


def test_reply_with_binary_output_arrives_exact():
    out = bytes(range(256)) + b"KSH-RESULT 9 9 9 9\n"  # looks like a header, is data
    buffer = reply(3, 1, out, b"err")
    assert all(b < 128 for b in buffer)
    result, rest = shell.parse_reply(buffer, 3)
    assert result == shell.Result(1, out, b"err")
    assert rest == b""


def test_empty_output():
    result, _ = shell.parse_reply(reply(4, 0, b""), 4)
    assert result == shell.Result(0, b"", b"")


def test_incomplete_reply_waits_for_more_bytes():
    buffer = reply(3, 0, b"1234567890")[:-5]
    result, rest = shell.parse_reply(buffer, 3)
    assert result is None and rest == buffer


def test_stale_replies_of_earlier_requests_are_skipped():
    buffer = reply(1, 0, b"hi") + reply(2, 0, b"yes")
    result, _ = shell.parse_reply(buffer, 2)
    assert result == shell.Result(0, b"yes", b"")


def test_line_noise_before_and_between_frames_is_skipped():
    noise = b"\x00\xff\x13garbage KSH-RES\r\nKSH-END 5\n\xfe"
    buffer = noise + reply(1, 0, b"old") + noise + b"\r\n" + reply(5, 2, b"new", b"e")
    result, rest = shell.parse_reply(buffer, 5)
    assert result == shell.Result(2, b"new", b"e")
    assert rest == b""


def test_carriage_returns_of_a_tty_are_tolerated():
    buffer = reply(6, 0, b"x" * 200).replace(b"\n", b"\r\n")
    assert shell.parse_reply(buffer, 6)[0] == shell.Result(0, b"x" * 200, b"")


def test_a_damaged_reply_is_caught_by_its_checksum():
    good = reply(8, 0, b"hello world")
    damaged = good.replace(b"aGVsbG8", b"aGVsbG9")  # one flipped bit in the base64
    with pytest.raises(shell.ShellGarbled, match="garbled"):
        shell.parse_reply(damaged, 8)


def test_a_reply_that_is_not_base64_is_caught():
    bad = b"KSH-RESULT 8 0 3 0 %s\nQUJ\nKSH-END 8\n" % hashlib.md5(b"abc").hexdigest().encode()
    with pytest.raises(shell.ShellGarbled, match="not base64"):
        shell.parse_reply(bad, 8)


def test_a_reply_missing_its_data_lines_is_caught():
    bad = b"KSH-RESULT 8 0 3 0 %s\n!!!!\nKSH-END 8\n" % hashlib.md5(b"abc").hexdigest().encode()
    with pytest.raises(shell.ShellGarbled, match="0 bytes, 3 announced"):
        shell.parse_reply(bad, 8)


def test_another_writers_lines_between_the_reply_lines_are_skipped():
    """Where the test shell shares the console's line, the boot's messages
    fall between the lines of a reply (each line is one write)."""
    lines = reply(9, 0, b"y" * 300).split(b"\n")
    noisy = [lines[0], b"[kubesolo-init] [INFO] Stage 60-network.sh starting", *lines[1:3],
             b"[   12.5] eth0: link up", b"", *lines[3:]]  # fmt: skip
    assert shell.parse_reply(b"\r\n".join(noisy), 9)[0] == shell.Result(0, b"y" * 300, b"")


def test_the_guest_reporting_a_damaged_request():
    with pytest.raises(shell.RequestGarbled):
        shell.parse_reply(b"noise KSH-GARBLED 4\n", 4)
    assert shell.parse_reply(b"KSH-GARBLED 3\n", 4) == (None, b"")


class FakeGuest:
    """Plays the guest side of the protocol over a socket pair."""

    def __init__(self):
        self.host, self.guest = socket.socketpair()
        self.guest.sendall(b"KSH-READY boot-1\n")

    def request(self) -> tuple[int, bytes]:
        data = b""
        while not data.rstrip().splitlines() or not data.rstrip().splitlines()[-1].startswith(
            b"KSH-END"
        ):
            data += self.guest.recv(1 << 20)
        lines = data.strip().splitlines()
        rid = int(lines[0].split()[1])
        return rid, base64.b64decode(b"".join(lines[1:-1]))

    def answer(self, status: int, out: bytes, garble_first: bool = False) -> None:
        rid, _ = self.request()
        if garble_first:
            self.guest.sendall(b"KSH-GARBLED %d\n" % rid)
            rid, _ = self.request()
        self.guest.sendall(b"\xffnoise\n" + reply(rid, status, out))


def test_round_trip_over_a_socket_with_one_mebibyte():
    guest = FakeGuest()
    client = shell.GuestShell(guest.host)
    assert client.wait_ready(1, timeout=5) == "boot-1"
    payload = bytes(range(256)) * 4096
    threading.Thread(target=guest.answer, args=(0, payload)).start()
    assert client.run("cat big", timeout=10) == shell.Result(0, payload, b"")
    client.close()


def test_a_request_the_guest_got_damaged_is_sent_again():
    guest = FakeGuest()
    client = shell.GuestShell(guest.host)
    client.wait_ready(1, timeout=5)
    threading.Thread(target=guest.answer, args=(0, b"ok"), kwargs={"garble_first": True}).start()
    assert client.run("true", timeout=10) == shell.Result(0, b"ok", b"")


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


class PtyStream:
    """The host end of a pty as a ByteStream: what a USB-serial adapter is to a board."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def recv(self, size: int) -> bytes:
        try:
            return os.read(self.fd, size)
        except OSError:  # EIO: the other end closed
            return b""

    def sendall(self, data: bytes) -> None:
        os.write(self.fd, data)

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def guest_on_a_tty(tmp_path):
    """The guest's test-shell script, run by busybox sh on the slave of a pty
    (a real tty with a line discipline: the script must set it raw)."""
    if shutil.which("busybox") is None:
        pytest.fail("busybox not found: install busybox-static (scripts/setup.sh)")
    master, slave = pty.openpty()
    tty = os.ttyname(slave)
    proc = subprocess.Popen(
        ["busybox", "sh", str(GUEST_SCRIPT), tty],
        env={"KSH_WORK": str(tmp_path), "PATH": os.environ["PATH"]},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    client = shell.GuestShell(PtyStream(master))  # the slave stays open: no EIO before the open
    yield client, master, tty
    proc.kill()
    proc.wait()
    os.close(slave)


def test_the_guest_script_on_a_tty_sets_it_raw_and_runs_commands(guest_on_a_tty):
    client, _, tty = guest_on_a_tty
    client.wait_ready(1, timeout=10)
    result = client.run("printf 'a\\tb\\r\\n\\377\\000'; echo err >&2; exit 3", timeout=10)
    assert result == shell.Result(3, b"a\tb\r\n\xff\x00", b"err\n")
    settings = client.run(f"stty -a -F {tty}", timeout=10).stdout.decode()
    words = set(settings.replace(";", " ").split())
    for flag in ("-echo", "-icanon", "-icrnl", "-opost", "-ixon", "-crtscts", "clocal"):
        assert flag in words, (flag, settings)
    assert "speed 115200 baud" in settings


def test_the_guest_script_resyncs_after_line_noise(guest_on_a_tty):
    client, master, _ = guest_on_a_tty
    client.wait_ready(1, timeout=10)
    os.write(master, b"\x00\x7fnoise\r\nKSH-REQ x y z\nKSH-END 1\nKSH-REQ 99 5 0\nhalf a req")
    time.sleep(0.2)
    assert client.run("echo after", timeout=10) == shell.Result(0, b"after\n", b"")


def test_the_guest_script_refuses_a_damaged_request(guest_on_a_tty):
    client, master, _ = guest_on_a_tty
    client.wait_ready(1, timeout=10)
    request = shell.encode_request(41, "touch /tmp/never", 5).replace(b"dG91", b"dG92")
    os.write(master, request)
    deadline = time.monotonic() + 10
    with client._cond:
        while b"KSH-GARBLED 41" not in client._buf:
            assert time.monotonic() < deadline, client._buf
            client._cond.wait(0.5)
    assert client.run("echo fine", timeout=10).stdout == b"fine\n"


def test_the_guest_script_carries_a_large_output(guest_on_a_tty):
    client, _, _ = guest_on_a_tty
    client.wait_ready(1, timeout=10)
    result = client.run("head -c 200000 /dev/urandom | tee out.bin | md5sum", timeout=30)
    assert result.status == 0
    big = client.run("cat out.bin", timeout=30).stdout
    assert len(big) == 200000
    assert hashlib.md5(big).hexdigest() == result.stdout.split()[0].decode()
