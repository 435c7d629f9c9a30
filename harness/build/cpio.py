"""A newc cpio writer for the initramfs: every entry root-owned, device nodes
included, so the image is built without root and without fakeroot."""

from __future__ import annotations

import stat
from collections.abc import Iterable
from dataclasses import dataclass

from harness.errors import UserError

TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member. `path` has no leading slash; `mode` holds the file
    type bits (stat.S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR) and permissions."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)
    owner: tuple[int, int] = (0, 0)  # uid, gid: the writer's are root's; parse reads them

    @classmethod
    def directory(cls, path: str, perm: int = 0o755) -> Entry:
        return cls(path, stat.S_IFDIR | perm)

    @classmethod
    def file(cls, path: str, data: bytes, perm: int = 0o644) -> Entry:
        return cls(path, stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, path: str, target: str) -> Entry:
        return cls(path, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def char_device(cls, path: str, major: int, minor: int, perm: int = 0o600) -> Entry:
        return cls(path, stat.S_IFCHR | perm, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def header(entry: Entry, ino: int) -> bytes:
    name = entry.path.encode() + b"\0"
    fields = [
        ino,
        entry.mode,
        entry.owner[0],  # uid
        entry.owner[1],  # gid
        2 if stat.S_ISDIR(entry.mode) else 1,  # nlink
        0,  # mtime: fixed, so equal inputs give equal archives
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # check
    ]
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    return head + name + _pad(len(head) + len(name))


def archive(entries: Iterable[Entry]) -> bytes:
    """The archive bytes, entries in the given order, then the trailer."""
    out = bytearray()
    for ino, entry in enumerate([*entries, Entry(TRAILER, 0)], start=1):
        out += header(entry, ino if entry.path != TRAILER else 0)
        out += entry.data + _pad(len(entry.data))
    return bytes(out)


def parse(data: bytes) -> list[Entry]:
    """Entries of a newc archive (for tests and inspection)."""
    entries: list[Entry] = []
    offset = 0
    while True:
        if data[offset : offset + 6] != b"070701":
            raise UserError(f"bad cpio magic at {offset}")
        f = [int(data[offset + 6 + i * 8 : offset + 14 + i * 8], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name_start = offset + 110
        name = data[name_start : name_start + namesize - 1].decode()
        offset = name_start + namesize
        offset += -offset % 4
        body = data[offset : offset + filesize]
        offset += filesize + (-filesize % 4)
        if name == TRAILER:
            return entries
        entries.append(Entry(name, f[1], body, (f[9], f[10]), (f[2], f[3])))
