"""The one polling wait (harness.vm.retry) and the guest commands that copy
host files and read listening ports (harness.vm.guest_files), run here by a
real shell and awk on a fake /proc table."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.errors import HarnessTimeout, UserError
from harness.vm import guest_files
from harness.vm.retry import retry


def test_retry_returns_the_first_result_and_tells_the_last_try():
    calls: list[bool] = []

    def attempt(last_try: bool) -> str | None:
        calls.append(last_try)
        return "done" if len(calls) == 3 else None

    assert retry(attempt, timeout=30, pause=0) == "done"
    assert calls == [False, False, False]


def test_the_try_at_the_deadline_is_the_last_and_may_raise_its_own_error():
    calls: list[bool] = []

    def attempt(last_try: bool) -> None:
        calls.append(last_try)
        if last_try:
            raise ValueError("what it last saw")

    with pytest.raises(ValueError, match="what it last saw"):
        retry(attempt, timeout=0.2, pause=0.05)
    assert calls[-1] is True and calls.count(True) == 1 and len(calls) >= 2


def test_a_last_try_without_a_result_is_a_timeout():
    with pytest.raises(HarnessTimeout, match="nothing within 0s"):
        retry(lambda last_try: None, timeout=0, pause=0)


def run_in_sh(commands: list[str], cwd: Path) -> None:
    for command in commands:
        subprocess.run(["sh", "-c", command], cwd=cwd, check=True)


def first_failure(commands: list[str], cwd: Path) -> str:
    """stderr of the first command that fails (the copy stops there)."""
    for command in commands:
        done = subprocess.run(["sh", "-c", command], cwd=cwd, capture_output=True, text=True)
        if done.returncode:
            return done.stderr
    raise AssertionError("every command succeeded")


def test_a_copied_file_arrives_byte_for_byte_with_its_mode_in_chunks(tmp_path):
    source = tmp_path / "source"
    source.write_bytes(os.urandom(guest_files.CHUNK * 2 + 17))
    source.chmod(0o751)
    target = tmp_path / "guest" / "deep" / "copy"
    commands = guest_files.copy_commands(source, str(target))
    assert len(commands) == 1 + 3 + 1  # the partial file, three chunks, the rename
    run_in_sh(commands, tmp_path)
    assert (
        hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )
    assert target.stat().st_mode & 0o7777 == 0o751
    assert not target.with_name("copy" + guest_files.PARTIAL_SUFFIX).exists()


def test_a_copied_directory_keeps_its_tree_and_is_roots(tmp_path):
    source = tmp_path / "tree"
    (source / "a" / "b").mkdir(parents=True)
    (source / "a" / "b" / "leaf").write_text("leaf\n")
    (source / "top").write_text("top\n")
    (source / "link").symlink_to("top")
    target = tmp_path / "guest" / "with space's" / "tree"
    run_in_sh(guest_files.copy_commands(source, str(target)), tmp_path)
    assert (target / "a" / "b" / "leaf").read_text() == "leaf\n"
    assert (target / "link").readlink() == Path("top")
    assert not list(target.parent.glob("*" + guest_files.PARTIAL_SUFFIX + "*"))
    with tarfile.open(fileobj=io.BytesIO(guest_files._tar_of(source))) as tar:
        members = tar.getmembers()
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "root", "root")}


def test_a_tree_is_never_merged_into_what_is_there(tmp_path):
    source = tmp_path / "tree"
    source.mkdir()
    (tmp_path / "there").mkdir()
    commands = guest_files.copy_commands(source, str(tmp_path / "there"))
    assert "exists" in first_failure(commands, tmp_path)


def test_a_file_never_lands_inside_a_directory_of_its_name(tmp_path):
    source = tmp_path / "f"
    source.write_text("x")
    (tmp_path / "dir").mkdir()
    commands = guest_files.copy_commands(source, str(tmp_path / "dir"))
    assert "is a directory" in first_failure(commands, tmp_path)
    assert list((tmp_path / "dir").iterdir()) == []


def test_an_empty_file_is_copied_empty(tmp_path):
    source = tmp_path / "empty"
    source.write_bytes(b"")
    run_in_sh(guest_files.copy_commands(source, str(tmp_path / "copy")), tmp_path)
    assert (tmp_path / "copy").read_bytes() == b""


@pytest.mark.parametrize(
    ("make", "target", "message"),
    [
        (lambda p: p / "missing", "/tmp/x", "not a file or a directory"),
        (lambda p: (p / "f").write_text("") or p / "f", "relative/x", "absolute guest path"),
        (lambda p: (p / "f").write_text("") or p / "f", "/tmp/dir/", "not ending in /"),
    ],
)
def test_bad_copies_are_one_clear_line(tmp_path, make, target, message):
    with pytest.raises(UserError, match=message):
        guest_files.copy_commands(make(tmp_path), target)


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid
   0: 00000000:1E14 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0
"""
TCP6 = """  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A
"""


@pytest.mark.parametrize(
    ("port", "listening"),
    [(7700, True), (22, True), (8080, False), (50000, False), (20, False)],
)
def test_the_listening_check_reads_the_kernels_tables(tmp_path, port, listening):
    """7700 (0x1E14) listens on IPv4 and 22 on IPv6; 8080 is only an
    established connection, 50000 only a remote port."""
    proc = tmp_path / "proc" / "net"
    proc.mkdir(parents=True)
    (proc / "tcp").write_text(TCP)
    (proc / "tcp6").write_text(TCP6)
    command = guest_files.listening_command(port).replace("/proc/net/", f"{proc}/")
    done = subprocess.run(["sh", "-c", command], check=False)
    assert (done.returncode == 0) == listening


def test_a_port_out_of_range_is_refused():
    with pytest.raises(UserError, match="1-65535"):
        guest_files.listening_command(70000)
