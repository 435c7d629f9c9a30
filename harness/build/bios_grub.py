"""GRUB for BIOS on a GPT disk, installed without grub-install (which wants a
block device and root): grub-mkimage makes core.img from Debian's i386-pc
modules, and the two patches grub-setup applies are done here as pure
functions: boot.img in the MBR points at core.img in the BIOS boot
partition, and core.img's first sector lists the sectors of the rest."""

from __future__ import annotations

import struct
from pathlib import Path

from harness.errors import UserError
from harness.tools import run_tool

SECTOR = 512
# offsets in boot.img (grub's include/grub/i386/pc/boot.h)
BPB_START, BPB_END = 0x03, 0x5A  # a DOS BPB: kept from the disk's own sector
KERNEL_SECTOR = 0x5C  # 64-bit LBA of core.img's first sector
DRIVE_CHECK = 0x66  # a jump that trusts the BIOS's drive number: nop'd for hard disks
PART_START = 0x1B8  # disk signature and partition table: kept from the disk's own MBR
# core.img's first sector (diskboot.img) ends with a blocklist entry:
# start LBA (8 bytes), sectors (2), load segment (2)
BLOCKLIST = struct.Struct("<QHH")
FIRST_BLOCK = SECTOR - BLOCKLIST.size
LOAD_SEGMENT = 0x800 + (SECTOR >> 4)  # GRUB_BOOT_I386_PC_KERNEL_SEG, after the first sector

# What core.img carries: no module can be loaded later (the ESP holds none
# for i386-pc), so every command of the menu (harness.build.boot_menu) is in it.
CORE_MODULES = [
    "biosdisk",
    "part_gpt",
    "fat",
    "normal",
    "boot",
    "linux",
    "serial",
    "terminal",
    "test",
    "echo",
    "configfile",
    "search",
]


def core_image(module_dir: Path, prefix: str, out: Path) -> bytes:
    """core.img for booting from a BIOS disk, reading its menu at `prefix`
    (e.g. "(,gpt2)/EFI/debian": partition 2 of the disk the BIOS booted)."""
    run_tool(
        [
            "grub-mkimage",
            "-O",
            "i386-pc",
            "-d",
            str(module_dir),
            "-p",
            prefix,
            "-o",
            str(out),
            *CORE_MODULES,
        ]
    )
    return out.read_bytes()


def patch_mbr(mbr: bytes, boot_img: bytes, core_lba: int) -> bytes:
    """The disk's first sector with boot.img's code in it, aimed at core.img;
    the disk's partition table (the protective MBR of its GPT) stays."""
    if len(mbr) != SECTOR or len(boot_img) != SECTOR:
        raise UserError("boot.img and the MBR are one 512-byte sector each")
    out = bytearray(boot_img)
    out[BPB_START:BPB_END] = mbr[BPB_START:BPB_END]
    out[KERNEL_SECTOR : KERNEL_SECTOR + 8] = struct.pack("<Q", core_lba)
    out[DRIVE_CHECK : DRIVE_CHECK + 2] = b"\x90\x90"
    out[PART_START:] = mbr[PART_START:]
    return bytes(out)


def patch_core(core_img: bytes, core_lba: int) -> bytes:
    """core.img with its first sector told where the rest lies: the sectors
    right after it, loaded one sector above the first."""
    sectors = -(-len(core_img) // SECTOR)
    padded = bytearray(core_img.ljust(sectors * SECTOR, b"\0"))
    padded[FIRST_BLOCK:SECTOR] = BLOCKLIST.pack(core_lba + 1, sectors - 1, LOAD_SEGMENT)
    return bytes(padded)
