"""newc archives: root-owned entries, device nodes, exact round trip."""

import stat

from harness.build import cpio


def test_round_trip_keeps_every_kind_of_entry():
    entries = [
        cpio.Entry.directory("etc"),
        cpio.Entry.file("etc/hostname", b"kubesolo\n"),
        cpio.Entry.file("bin/odd", b"x" * 5, perm=0o755),
        cpio.Entry.symlink("init", "sbin/init"),
        cpio.Entry.char_device("dev/console", 5, 1),
    ]
    assert cpio.parse(cpio.archive(entries)) == entries


def test_header_is_newc_and_root_owned():
    data = cpio.archive([cpio.Entry.file("a", b"hi")])
    assert data.startswith(b"070701")
    fields = [int(data[6 + i * 8 : 14 + i * 8], 16) for i in range(13)]
    uid, gid, mtime = fields[2], fields[3], fields[5]
    assert (uid, gid, mtime) == (0, 0, 0)


def test_entries_and_data_are_four_byte_aligned():
    data = cpio.archive([cpio.Entry.file("abc", b"12345"), cpio.Entry.file("d", b"")])
    assert len(data) % 4 == 0
    assert [e.path for e in cpio.parse(data)] == ["abc", "d"]


def test_console_node_is_a_character_device():
    (entry,) = cpio.parse(cpio.archive([cpio.Entry.char_device("dev/console", 5, 1)]))
    assert stat.S_ISCHR(entry.mode)
    assert entry.rdev == (5, 1)


def test_trailer_ends_the_archive():
    assert b"TRAILER!!!" in cpio.archive([])
