"""Reading 64-bit little-endian ELF files, done once for the places that need
it: kernel modules (.modinfo), the PVH kernel (its notes), the KubeSolo binary
(x86-64 or not) and the workload images (a program's loader and the shared
libraries it needs). Pure functions over bytes."""

from __future__ import annotations

import struct

from harness.errors import HarnessError

MAGIC = b"\x7fELF"
CLASS_64, LITTLE_ENDIAN = 2, 1
MACHINE_X86_64 = 0x3E
PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NULL, DT_NEEDED, DT_STRTAB = 0, 1, 5


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


def _program_headers(data: bytes) -> list[tuple[int, int, int, int]]:
    """(type, file offset, virtual address, size in the file) of each segment."""
    if not is_elf64_le(data):
        raise ElfError("not a 64-bit little-endian ELF file")
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    headers = []
    for i in range(phnum):
        p_type, _flags, offset, vaddr, _paddr, filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        headers.append((p_type, offset, vaddr, filesz))
    return headers


def notes(data: bytes) -> list[tuple[bytes, int]]:
    """(name, type) of the notes in the PT_NOTE segments."""
    found = []
    for p_type, offset, _vaddr, filesz in _program_headers(data):
        if p_type != PT_NOTE:
            continue
        pos, end = offset, offset + filesz
        while pos + 12 <= end:
            namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
            found.append((data[pos + 12 : pos + 12 + namesz].rstrip(b"\0"), n_type))
            pos += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return found


def interpreter(data: bytes) -> str | None:
    """The dynamic loader a program asks for (PT_INTERP), None when static."""
    for p_type, offset, _vaddr, filesz in _program_headers(data):
        if p_type == PT_INTERP:
            return data[offset : offset + filesz].split(b"\0", 1)[0].decode()
    return None


def needed(data: bytes) -> list[str]:
    """The sonames an object needs (DT_NEEDED), in order, read from the
    PT_DYNAMIC segment as the dynamic loader reads them: section headers may be
    stripped, program headers never are."""
    headers = _program_headers(data)
    dynamic = next(((o, size) for t, o, _v, size in headers if t == PT_DYNAMIC), None)
    if dynamic is None:
        return []
    offset, size = dynamic
    strtab_addr, needed_offsets = None, []
    for pos in range(offset, offset + size - 15, 16):
        tag, value = struct.unpack_from("<qQ", data, pos)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offsets.append(value)
        elif tag == DT_STRTAB:
            strtab_addr = value
    if not needed_offsets:
        return []
    if strtab_addr is None:
        raise ElfError("DT_NEEDED entries without a DT_STRTAB")
    strtab = _file_offset(headers, strtab_addr)
    return [data[strtab + n : data.index(b"\0", strtab + n)].decode() for n in needed_offsets]


def _file_offset(headers: list[tuple[int, int, int, int]], address: int) -> int:
    """Where a virtual address of a loaded segment lies in the file."""
    for p_type, offset, vaddr, filesz in headers:
        if p_type == PT_LOAD and vaddr <= address < vaddr + filesz:
            return offset + address - vaddr
    raise ElfError(f"address {address:#x} is in no loaded segment")
