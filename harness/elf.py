"""Reading 64-bit little-endian ELF files, done once for the three places that
need it: kernel modules (.modinfo), the PVH kernel (its notes) and the
KubeSolo binary (x86-64 or not). Pure functions over bytes."""

from __future__ import annotations

import struct

from harness.errors import HarnessError

MAGIC = b"\x7fELF"
CLASS_64, LITTLE_ENDIAN = 2, 1
MACHINE_X86_64 = 0x3E
PT_NOTE = 4


class ElfError(HarnessError, ValueError):
    """The bytes are not the ELF file the caller expects."""


def is_elf64_le(data: bytes) -> bool:
    return data[:4] == MAGIC and len(data) > 5 and data[4] == CLASS_64 and data[5] == LITTLE_ENDIAN


def is_x86_64(head: bytes) -> bool:
    """An x86-64 ELF (the first 20 bytes suffice)."""
    return is_elf64_le(head) and len(head) >= 20 and head[18] == MACHINE_X86_64


def section(data: bytes, wanted: str) -> bytes:
    """Contents of a named section."""
    if not is_elf64_le(data):
        raise ElfError("not a 64-bit little-endian ELF file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", data, shoff + i * shentsize
        )
        return name, offset, size

    _, strtab_off, _ = header(shstrndx)
    for i in range(shnum):
        name_off, offset, size = header(i)
        end = data.index(b"\0", strtab_off + name_off)
        if data[strtab_off + name_off : end].decode() == wanted:
            return data[offset : offset + size]
    raise ElfError(f"no {wanted} section")


def notes(data: bytes) -> list[tuple[bytes, int]]:
    """(name, type) of the notes in the PT_NOTE segments."""
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    found = []
    for i in range(phnum):
        p_type, _flags, offset, _va, _pa, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type != PT_NOTE:
            continue
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
            found.append((data[pos + 12 : pos + 12 + namesz].rstrip(b"\0"), n_type))
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return found
