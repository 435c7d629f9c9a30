"""The files of a snapshot (docs/architecture.md "Snapshots"): the guest's
RAM, found in QEMU's memfd and copied with its holes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.disk import copy_sparse
from harness.vm.snapshot import memfd_of

MIB = 1 << 20


def test_a_sparse_copy_keeps_the_data_the_holes_and_the_size(tmp_path):
    source = tmp_path / "ram"
    with source.open("wb") as out:
        out.truncate(64 * MIB)
        for offset, data in ((0, b"boot"), (9 * MIB, b"x" * MIB), (64 * MIB - 4, b"last")):
            out.seek(offset)
            out.write(data)
    target = tmp_path / "copy"
    copy_sparse(source, target)
    assert target.read_bytes() == source.read_bytes()
    assert target.stat().st_blocks * 512 < 8 * MIB  # the holes stayed holes


def test_an_empty_or_all_hole_file_copies_to_its_size(tmp_path):
    source = tmp_path / "ram"
    with source.open("wb") as out:
        out.truncate(MIB)
    copy_sparse(source, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == bytes(MIB)


def test_the_memfd_is_found_by_its_name_in_the_process():
    fd = os.memfd_create("kubesolo-test-ram")
    try:
        os.write(fd, b"guest")
        found = memfd_of(os.getpid(), "memfd:kubesolo-test-ram")
        assert Path(found).read_bytes() == b"guest"
        with pytest.raises(FileNotFoundError, match="no memfd memfd:other"):
            memfd_of(os.getpid(), "memfd:other")
    finally:
        os.close(fd)


def test_the_guest_ram_is_copied_from_its_memfd_with_its_holes(tmp_path):
    """What a save does: QEMU's RAM is a memfd, read through /proc."""
    fd = os.memfd_create("kubesolo-test-guest-ram")
    try:
        os.ftruncate(fd, 32 * MIB)
        os.pwrite(fd, b"kernel", 0)
        os.pwrite(fd, b"page cache" * 1000, 20 * MIB)
        copy_sparse(memfd_of(os.getpid(), "memfd:kubesolo-test-guest-ram"), tmp_path / "ram")
        with open(f"/proc/self/fd/{fd}", "rb") as ram:
            assert (tmp_path / "ram").read_bytes() == ram.read()
        assert (tmp_path / "ram").stat().st_blocks * 512 < 4 * MIB
    finally:
        os.close(fd)
