"""Recognising a KubeSolo binary or release tarball, refusing anything else in one line:
releases below v1.1.3, release tarballs that are not -offline assets and binaries
whose flags the image's flag table does not describe included."""

import io
import struct
import tarfile
from pathlib import Path

import pytest

from harness.build import kubesolo_bin
from harness.errors import UserError

ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 11 + b"\x3e\x00" + b"\0" * 100
OFFLINE = "kubesolo-v1.2.2-linux-amd64-musl-offline.tar.gz"
# kingpin's --help-long of the KubeSolo the flag table describes, as recorded
HELP_LONG = (Path(__file__).parent / "fixtures/kubesolo-help-long-develop.txt").read_text()


def elf_printing(text: str, fd: int = 1) -> bytes:
    """A static x86-64 ELF that writes `text` to `fd` and exits 0: a stand-in for a
    `kubesolo` answering --version, small enough to build here."""
    message = text.encode()
    base, code_at = 0x400000, 64 + 56
    code = (
        b"\xb8\x01\x00\x00\x00"  # mov eax, 1 (write)
        + b"\xbf"
        + struct.pack("<I", fd)  # mov edi, fd
        + b"\x48\x8d\x35"
        + struct.pack("<i", 16)  # lea rsi, [rip + 16]: the message after the code
        + b"\xba"
        + struct.pack("<I", len(message))  # mov edx, len
        + b"\x0f\x05"  # syscall
        + b"\xb8\x3c\x00\x00\x00"  # mov eax, 60 (exit)
        + b"\x31\xff"  # xor edi, edi
        + b"\x0f\x05"  # syscall
    )
    size = code_at + len(code) + len(message)
    header = (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, base + code_at, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    )
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + program + code + message


def write_binary(tmp_path, data: bytes, name: str = "kubesolo"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("kubesolo-v1.2.2-linux-amd64.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-amd64-musl-offline.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-amd64-offline.tar.gz", "v1.2.2"),
        ("kubesolo-v1.2.2-linux-arm64.tar.gz", None),
        ("kubesolo.tar.gz", None),
    ],
)
def test_release_asset_names(name, version):
    assert kubesolo_bin.tarball_version(name) == version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("v1.1.3", (1, 1, 3)),
        ("1.2.10\n", (1, 2, 10)),
        (
            '{"level":"info","version":"v1.2.1","time":"2026-11-26T10:00:00Z",'
            '"message":"kubesolo version"}',
            (1, 2, 1),
        ),
        ("\x1b[90m10:00AM\x1b[0m INF kubesolo version version=v1.1.3-rc.1", (1, 1, 3)),
        ("dev", None),
        ("", None),
    ],
)
def test_versions_are_read_from_names_and_version_output(text, version):
    assert kubesolo_bin.parse_version(text) == version


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        ((1, 1, 2), False),
        ((1, 0, 9), False),
        ((0, 9, 9), False),
        ((1, 1, 3), True),
        ((1, 2, 0), True),
        ((1, 10, 0), True),  # compared as numbers, not text
        ((2, 0, 0), True),
    ],
)
def test_the_minimum_release_is_v1_1_3(version, supported):
    assert kubesolo_bin.version_supported(version) is supported


def make_tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_a_release_tarball_yields_its_binary(tmp_path):
    path = tmp_path / OFFLINE
    stub = elf_printing(HELP_LONG)  # answers --help-long with the table's flags
    make_tarball(path, {"kubesolo": stub})
    loaded = kubesolo_bin.load(path)
    assert loaded.data == stub
    assert loaded.version == "v1.2.2"


@pytest.mark.parametrize("tarball", [False, True])
def test_a_binary_with_other_flags_is_refused_in_one_line(tmp_path, tarball):
    """docs/kubesolo.md "Command line": the table is what stage 90 merges by."""
    other = HELP_LONG.replace("--[no-]pprof-server", "--[no-]profiler")
    stub = elf_printing(f"v1.2.2\n{other}")
    if tarball:
        path = tmp_path / OFFLINE
        make_tarball(path, {"kubesolo": stub})
    else:
        path = write_binary(tmp_path, stub)
    with pytest.raises(UserError, match=r"--pprof-server is gone; --profiler is new") as err:
        kubesolo_bin.load(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("fd", [1, 2])  # kubesolo logs its version line to stderr
def test_a_bare_binary_answering_its_version_is_accepted_with_a_warning(tmp_path, fd, caplog):
    version = '{"level":"info","version":"v1.2.1","message":"kubesolo version"}\n'
    stub = elf_printing(version + HELP_LONG, fd)
    path = write_binary(tmp_path, stub)
    loaded = kubesolo_bin.load(path)
    assert (loaded.data, loaded.version) == (stub, "v1.2.1")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "-offline" in warnings[0]


def test_a_bare_binary_of_v1_1_2_is_refused_in_one_line(tmp_path):
    """Its kubelet would use the systemd cgroup driver: no pod ever starts here."""
    path = write_binary(tmp_path, elf_printing("v1.1.2\n"))
    with pytest.raises(UserError, match=r"KubeSolo v1\.1\.2 is too old: .* use v1\.1\.3") as err:
        kubesolo_bin.load(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("stub", [elf_printing("dev\n"), ELF])  # no number; will not run
def test_a_bare_binary_of_unknown_version_is_refused(tmp_path, stub):
    path = write_binary(tmp_path, stub)
    with pytest.raises(UserError, match="pass the release tarball or a kubesolo binary") as err:
        kubesolo_bin.load(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("kubesolo", b"#!/bin/sh\necho v1.2.2\n", "not an x86-64 kubesolo binary"),
        ("kubesolo-v1-linux-arm64.tar.gz", b"", "expected kubesolo-<version>"),
        ("kubesolo-v1.2.2-linux-amd64-offline.tar.gz", b"not a tarball", "not a readable"),
        ("kubesolo-v1.1.2-linux-amd64-musl-offline.tar.gz", b"", r"v1\.1\.2 is too old"),
        ("kubesolo-v1.0.0-linux-amd64-offline.tar.gz", b"", r"v1\.0\.0 is too old"),
        ("kubesolo-v1.2.2-linux-amd64-musl.tar.gz", b"", "not an -offline release asset"),
        ("kubesolo-v1.2.2-linux-amd64.tar.gz", b"", "never gets Ready air-gapped"),
    ],
)
def test_anything_else_is_refused_in_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as err:
        kubesolo_bin.load(path)
    assert "\n" not in str(err.value)


def test_a_tarball_without_kubesolo_is_refused(tmp_path):
    path = tmp_path / OFFLINE
    make_tarball(path, {"README": b"x"})
    with pytest.raises(UserError, match="one file `kubesolo`"):
        kubesolo_bin.load(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        kubesolo_bin.load(tmp_path / "nope")
