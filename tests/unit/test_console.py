"""Console cursors over a synthetic stream and the failure table."""

import threading
import time

import pytest

from harness.vm.console import (
    FAILURE_PATTERNS,
    BootFailure,
    Console,
    ConsoleTimeout,
    find_failure,
    find_warnings,
)

MARKER = r"\[OK\] Stage 90"


@pytest.fixture
def console(tmp_path):
    return Console(tmp_path / "console.log")


def test_waits_start_at_the_cursor(console):
    """After a reboot the old boot's marker is before the cursor: not seen."""
    console.feed(b"[OK] Stage 90 first boot\n")
    cursor = console.cursor()
    console.feed(b"rebooting\n")
    with pytest.raises(ConsoleTimeout):
        console.wait_for(MARKER, timeout=0.2, since=cursor)
    console.feed(b"[OK] Stage 90 second boot\n")
    assert console.wait_for(MARKER + r" (\w+)", timeout=1, since=cursor).group(1) == "second"


def test_a_wait_wakes_when_text_streams_in(console):
    def later():
        time.sleep(0.2)
        console.feed(b"[OK] Sta")
        console.feed(b"ge 90\n")

    threading.Thread(target=later).start()
    assert console.wait_for(MARKER, timeout=5).group(0) == "[OK] Stage 90"


def test_failure_before_the_marker_raises_at_once(console):
    console.feed(b"[kubesolo-init] [ERROR] data device missing\nmore\n")
    started = time.monotonic()
    with pytest.raises(BootFailure) as failure:
        console.wait_for(MARKER, timeout=30)
    assert time.monotonic() - started < 1
    assert failure.value.description == "init stage error"
    assert "data device missing" in str(failure.value)


def test_failure_after_the_marker_does_not_hide_it(console):
    console.feed(b"[OK] Stage 90\nKernel panic - not syncing: later\n")
    assert console.wait_for(MARKER, timeout=1)


def test_failures_can_be_allowed(console):
    console.feed(b"[kubesolo-init] [ERROR] expected\n(kubesolo-emergency) # ")
    assert console.wait_for(r"kubesolo-emergency", timeout=1, failures=())


@pytest.mark.parametrize(
    ("line", "description"),
    [
        ("[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs", "kernel panic"),
        ("Kernel panic - not syncing: Attempted to kill init! exitcode=0x100", "kernel panic"),
        ("[    3.0] BUG: kernel NULL pointer dereference", "kernel BUG"),
        ("[    3.0] Oops: 0002 [#1] SMP", "kernel oops"),
        ("[kubesolo-init] [ERROR] Stage 20-persistent-mount.sh failed", "init stage error"),
        ("kubesolo: error: unexpected true, try --help", "KubeSolo rejected its command line"),
        (
            "[kubesolo-init] [ERROR] Giving up on KubeSolo: 5 fast failures in a row (each",
            "init gave up on KubeSolo",
        ),
    ],
)
def test_failure_table(line, description):
    found = find_failure(f"ok\n{line}\nmore\n")
    assert found is not None and found[0].description == description


def test_restarts_are_warnings_not_failures():
    """docs/architecture.md "Console": KubeSolo's early shutdown and init's restart
    line are warnings, in console order; the node goes on."""
    text = (
        'time=1 msg="shutdown requested before containerd was ready"\n'
        "[kubesolo-init] [WARN] KubeSolo exited (exit status 1 after 31s, fast failure 1 of 5):"
        " restarting it in 2s\n"
    )
    assert find_failure(text) is None
    warnings = find_warnings(text)
    assert [p.name for p, _ in warnings] == ["kubesolo-shutdown", "kubesolo-restart"]
    assert warnings[1][1].groups() == ("exit status 1", "31")


def test_normal_boot_text_is_no_failure():
    text = "[kubesolo-init] [WARN] no hardware clock\n[kubesolo-init] [OK] Stage 90 done\n"
    assert find_failure(text) is None
    assert len({p.description for p in FAILURE_PATTERNS}) == len(FAILURE_PATTERNS)


def test_the_log_file_gets_every_byte(tmp_path):
    import socket

    console = Console(tmp_path / "console.log")
    ours, qemus = socket.socketpair()
    console.attach(ours)
    qemus.sendall(b"\x00binary\xffbytes\r\n")
    console.wait_for("bytes", timeout=5)
    qemus.close()
    console.close()
    assert (tmp_path / "console.log").read_bytes() == b"\x00binary\xffbytes\r\n"


# GRUB's menu frame in its code page, a truncated UTF-8 sequence, and real UTF-8
NOT_UTF8 = b"\xda\xc4\xc4\xbf menu \xe2\x82 \xe2\x94\x80 "


def test_a_match_end_is_its_byte_in_the_log_whatever_the_bytes(console):
    """docs/architecture.md "Console": expects read on from where the last one
    matched; bytes that are not UTF-8 (each one character) must not move that
    cursor past what it has not read yet (once, it skipped GRUB's menu)."""
    console.feed(NOT_UTF8 + b"error: refused\n" + NOT_UTF8 + b"Use the keys\n")
    match = console.wait_for(r"error: refused\n", timeout=1)
    cursor = console.byte_offset(0, match.end())
    assert bytes(console.snapshot()[0][:cursor]).endswith(b"error: refused\n")
    assert cursor == len(NOT_UTF8) + len(b"error: refused\n")
    assert console.wait_for("Use the keys", timeout=1, since=cursor)
    # per copy: da and c4 (c4 bf is UTF-8), and the truncated e2 82 as two, not one
    assert console.text().count("\ufffd") == 8
