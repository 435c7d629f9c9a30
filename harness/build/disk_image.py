"""kubesolo-os.img: one disk that holds the OS and its state, for an SSD or a
USB stick (docs/boot-flow.md "Media"). GPT, with a BIOS boot partition
(GRUB's core.img), an EFI system partition (shim, signed GRUB, the menu, the
kernel and the initramfs) and the KSOLODATA ext4 data partition. Made without
root or loop devices, reproducibly: every GUID and UUID comes from the
image's cache key, every time is fixed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from harness.build import bios_grub, fat
from harness.guest import DATA_LABEL
from harness.reproducible import E2FSPROGS_ENV
from harness.tools import run_tool

MIB = 1 << 20
SECTOR = 512
# the data partition's size: fixed, never grown by the OS (docs/boot-flow.md "Media")
DATA_MIB = 2048
ESP_MIB = 256  # room for a real KubeSolo in the initramfs, and for one more kernel
ESP_LABEL = "KSOLOBOOT"
GRUB_DIR = "EFI/debian"  # where Debian's signed GRUB reads grub.cfg (its built-in prefix)
BIOS_PREFIX = f"(,gpt2)/{GRUB_DIR}"  # BIOS GRUB reads the same file


@dataclass(frozen=True)
class Partition:
    number: int
    name: str
    type_code: str  # sgdisk's short type codes
    start_mib: int
    size_mib: int

    @property
    def offset(self) -> int:
        return self.start_mib * MIB


BIOS_BOOT = Partition(1, "BIOS boot", "EF02", 1, 1)
ESP = Partition(2, "EFI system", "EF00", 2, ESP_MIB)
DATA = Partition(3, DATA_LABEL, "8300", 2 + ESP_MIB, DATA_MIB)
PARTITIONS = (BIOS_BOOT, ESP, DATA)
DISK_MIB = DATA.start_mib + DATA.size_mib + 1  # the backup GPT at the end


def guid(key: str, what: str) -> str:
    """A GUID that equal inputs give again (the image's cache key)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubesolo-os:{key}:{what}"))


def sgdisk_args(key: str) -> list[str]:
    """sgdisk's arguments for the partition table (pure)."""
    args = ["-U", guid(key, "disk")]
    for p in PARTITIONS:
        end = (p.start_mib + p.size_mib) * MIB // SECTOR - 1
        args += [f"-n{p.number}:{p.offset // SECTOR}:{end}", f"-t{p.number}:{p.type_code}"]
        args += [f"-c{p.number}:{p.name}", f"-u{p.number}:{guid(key, f'part{p.number}')}"]
    return args


def esp_files(files: dict[str, Path | bytes], grub_cfg: str) -> dict[str, Path | bytes]:
    """The ESP: what `files` names (shim, GRUB, kernel, initramfs) and the menu."""
    return {**files, f"{GRUB_DIR}/grub.cfg": grub_cfg.encode()}


def make_disk_image(
    out: Path,
    key: str,
    esp: dict[str, Path | bytes],
    grub_pc: Path,
) -> Path:
    """Write kubesolo-os.img: `esp` (path -> file) on the ESP, BIOS GRUB from
    the i386-pc module directory `grub_pc`, and a blank data partition."""
    work = out.with_name(out.name + ".parts")
    work.mkdir()
    out.unlink(missing_ok=True)
    with out.open("wb") as f:
        f.truncate(DISK_MIB * MIB)
    run_tool(["sgdisk", *sgdisk_args(key), str(out)])
    esp_image = fat.fat_image(work / "esp.img", ESP.size_mib, ESP_LABEL, esp)
    copy_into(esp_image, out, ESP.offset)
    data_uuid = guid(key, "data")
    run_tool(
        [
            "mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-m", "0", "-U", data_uuid,
            "-E", f"hash_seed={data_uuid},offset={DATA.offset},"
            "lazy_itable_init=0,lazy_journal_init=0",
            str(out), f"{DATA.size_mib}M",
        ],
        env=E2FSPROGS_ENV,
    )  # fmt: skip
    core_lba = BIOS_BOOT.offset // SECTOR
    core = bios_grub.core_image(grub_pc, BIOS_PREFIX, work / "core.img")
    if len(core) > BIOS_BOOT.size_mib * MIB:
        raise RuntimeError(f"core.img ({len(core)} bytes) outgrew the BIOS boot partition")
    with out.open("r+b") as f:
        mbr = f.read(SECTOR)
        f.seek(0)
        f.write(bios_grub.patch_mbr(mbr, (grub_pc / "boot.img").read_bytes(), core_lba))
        f.seek(BIOS_BOOT.offset)
        f.write(bios_grub.patch_core(core, core_lba))
    for leftover in work.iterdir():
        leftover.unlink()
    work.rmdir()
    return out


def copy_into(src: Path, dst: Path, offset: int, block: int = MIB) -> None:
    """`src`'s bytes at `offset` in `dst`, leaving holes where `src` is zero."""
    zero = bytes(block)
    with src.open("rb") as i, dst.open("r+b") as o:
        at = offset
        while chunk := i.read(block):
            if chunk != zero[: len(chunk)]:
                o.seek(at)
                o.write(chunk)
            at += len(chunk)
