"""Deriving the PVH-bootable ELF kernel from a bzImage."""

import gzip
import lzma
import struct

from harness import elf
from harness.vm import pvh


def elf_with_note(name: bytes, note_type: int) -> bytes:
    """A 64-bit ELF with one PT_NOTE segment holding one note."""
    padded = name + b"\0" * (-len(name) % 4)
    note = struct.pack("<III", len(name), 4, note_type) + padded + b"\0" * 4
    header = bytearray(64)
    header[:6] = elf.MAGIC + bytes([elf.CLASS_64, elf.LITTLE_ENDIAN])
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", elf.PT_NOTE, 0, 64 + 56, 0, 0, len(note), len(note), 4)
    return bytes(header) + phdr + note


def test_pvh_note_is_found():
    assert pvh.has_pvh_note(elf_with_note(b"Xen\0", pvh.XEN_ELFNOTE_PHYS32_ENTRY))
    assert not pvh.has_pvh_note(elf_with_note(b"Xen\0", 6))
    assert not pvh.has_pvh_note(elf_with_note(b"GNU\0", pvh.XEN_ELFNOTE_PHYS32_ENTRY))


def test_xz_payload_is_extracted_past_false_magics():
    vmlinux = elf_with_note(b"Xen\0", 18)
    bzimage = b"MZ setup" + pvh.XZ_MAGIC + b"garbage" + lzma.compress(vmlinux) + b"\0" * 16
    assert pvh.extract_vmlinux(bzimage) == vmlinux


def test_gzip_payload_is_extracted():
    vmlinux = elf_with_note(b"Xen\0", 18)
    assert pvh.extract_vmlinux(b"setup" + gzip.compress(vmlinux)) == vmlinux


def test_no_kernel_inside_gives_none():
    assert pvh.extract_vmlinux(b"MZ" + lzma.compress(b"not an elf")) is None
