"""The built media, read on the host (docs/boot-flow.md "Media",
"Bootloader"): the ISO's El Torito catalog lists a BIOS and a UEFI image,
every menu inside the ISO and the disk image is the boot-menu table, the disk
image's partitions hold what the docs say, and an independent build writes
the same bytes."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from harness.artefact import cache_root
from harness.build import boot_menu, disk_image, fat
from harness.tools import run_tool

REPO = Path(__file__).resolve().parents[2]
MENU = boot_menu.load(REPO / "build/boot-menu.toml")
BASIC_DATA_TYPE = uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7").bytes_le
BASIC_DATA_TYPE = uuid.UUID("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7").bytes_le
SUPERBLOCK_AT, EXT4_MAGIC_AT, EXT4_LABEL_AT = 1024, 0x38, 0x78  # in the superblock


def gpt_partitions(path: Path) -> list[tuple[bytes, int, int]]:
    """(type GUID, first LBA, last LBA) of each used GPT entry."""
    with path.open("rb") as f:
        f.seek(512)
        header = f.read(92)
        assert header[:8] == b"EFI PART"
        entries_at, count, size = struct.unpack_from("<QII", header, 72)
        f.seek(entries_at * 512)
        table = f.read(count * size)
    rows = [struct.unpack_from("<16s16sQQ", table, i * size) for i in range(count)]
    return [(kind, first, last) for kind, _, first, last in rows if kind != bytes(16)]


def iso_file(image, inside: str, tmp_path: Path) -> bytes:
    out = tmp_path / Path(inside).name
    run_tool(["xorriso", "-osirrox", "on", "-indev", str(image.iso), "-extract", inside, str(out)])
    return out.read_bytes()


def test_el_torito_lists_a_bios_and_a_uefi_image(kubesolo_image):
    """The ISO boots as a CD under BIOS (isolinux) and under UEFI (the EFI image)."""
    report = subprocess.run(
        ["xorriso", "-indev", str(kubesolo_image.iso), "-report_el_torito", "plain"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    images = re.findall(r"^El Torito boot img :\s+\d+\s+(\w+)\s+y\s+none", report, re.M)
    assert images == ["BIOS", "UEFI"]
    assert re.search(r"^El Torito img path :\s+1\s+/isolinux/isolinux.bin$", report, re.M)
    assert re.search(r"^El Torito img path :\s+2\s+/boot/efiboot.img$", report, re.M)


def test_iso_written_to_a_disk_has_an_efi_partition(kubesolo_image):
    """Written raw to a stick, the ISO has a partition that is the El Torito EFI
    image, in its MBR (type 0xEF) and in its GPT (basic data, as xorriso's
    -isohybrid-gpt-basdat marks it; firmware finds EFI/BOOT/BOOTX64.EFI on
    it), and its MBR boots isolinux."""
    mbr = kubesolo_image.iso.read_bytes()[:512]
    entries = [mbr[0x1BE + 16 * i : 0x1BE + 16 * (i + 1)] for i in range(4)]
    (efi_start,) = [struct.unpack_from("<I", e, 8)[0] for e in entries if e[4] == 0xEF]
    gpt = gpt_partitions(kubesolo_image.iso)
    assert (BASIC_DATA_TYPE, efi_start) in [(kind, first) for kind, first, _ in gpt]
    shim = fat.read_file(kubesolo_image.iso, "EFI/BOOT/BOOTX64.EFI", efi_start * 512)
    assert shim[:2] == b"MZ"
    assert mbr[510:512] == b"\x55\xaa"


def test_every_menu_in_the_media_is_the_table(kubesolo_image, tmp_path):
    """docs/boot-flow.md "Bootloader": isolinux's menu and GRUB's on the ISO, and
    GRUB's on the disk image's ESP (read by BIOS and UEFI GRUB alike), offer
    exactly the table's labels, command lines, default and wait."""
    isolinux = iso_file(kubesolo_image, "/isolinux/isolinux.cfg", tmp_path).decode()
    iso_grub = iso_file(kubesolo_image, "/boot/grub/grub.cfg", tmp_path).decode()
    esp = disk_image.ESP.offset
    disk_grub = fat.read_file(kubesolo_image.disk_image, "EFI/debian/grub.cfg", esp).decode()
    assert boot_menu.parse_isolinux(isolinux) == MENU
    assert boot_menu.parse_grub(iso_grub) == MENU
    assert boot_menu.parse_grub(disk_grub) == MENU
    assert iso_grub == disk_grub == boot_menu.grub_cfg(MENU)


def test_the_iso_has_what_the_cd_grub_looks_for(kubesolo_image, tmp_path):
    """shim at the removable-media path, GRUB beside it, and /.disk/info."""
    efi = tmp_path / "efiboot.img"
    efi.write_bytes(iso_file(kubesolo_image, "/boot/efiboot.img", tmp_path))
    assert fat.read_file(efi, "EFI/BOOT/BOOTX64.EFI")[:2] == b"MZ"
    assert fat.read_file(efi, "EFI/BOOT/grubx64.efi")[:2] == b"MZ"
    assert iso_file(kubesolo_image, "/.disk/info", tmp_path)


def test_disk_image_partitions(kubesolo_image):
    """docs/boot-flow.md "Media": GPT with BIOS boot, ESP and KSOLODATA at the
    documented places; the ESP holds shim, GRUB, the image's kernel and
    initramfs; the data partition is a blank ext4 labelled KSOLODATA."""
    img = kubesolo_image.disk_image
    assert img.stat().st_size == 2307 << 20
    table = run_tool(["sgdisk", "-p", str(img)])
    rows = re.findall(r"^\s+(\d)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+(\w{4})\s+(.+)$", table, re.M)
    assert rows == [
        ("1", "2048", "4095", "EF02", "BIOS boot"),
        ("2", "4096", "528383", "EF00", "EFI system"),
        ("3", "528384", "4722687", "8300", "KSOLODATA"),
    ]
    esp = disk_image.ESP.offset
    assert fat.read_file(img, "boot/vmlinuz", esp) == kubesolo_image.kernel.read_bytes()
    assert fat.read_file(img, "boot/initramfs", esp) == kubesolo_image.initramfs.read_bytes()
    assert fat.read_file(img, "EFI/BOOT/BOOTX64.EFI", esp)[:2] == b"MZ"
    with img.open("rb") as f:
        f.seek(disk_image.DATA.offset + SUPERBLOCK_AT)
        superblock = f.read(1024)
        f.seek(0)
        mbr = f.read(512)
    assert superblock[EXT4_MAGIC_AT : EXT4_MAGIC_AT + 2] == b"\x53\xef"
    assert superblock[EXT4_LABEL_AT : EXT4_LABEL_AT + 16].rstrip(b"\0") == b"KSOLODATA"
    assert mbr[510:512] == b"\x55\xaa" and mbr[0x5C:0x64] == (2048).to_bytes(8, "little")


def test_an_independent_build_is_byte_identical(kubesolo_image, pytestconfig, tmp_path):
    """docs/boot-flow.md "Media" (reproducible): another process with an empty
    cache (but the downloaded packages) writes the same disk image, ISO and
    initramfs and blank data disk; the manifests differ only in `built_at`."""
    if pytestconfig.getoption("kubesolo_image") or pytestconfig.getoption("kubesolo_bin"):
        pytest.skip("the session image was not built from the default inputs")
    store = tmp_path / "cache" / "kubesolo-harness"
    (store / "debs").mkdir(parents=True)
    for deb in (cache_root() / "debs").glob("*.deb"):
        try:
            os.link(deb, store / "debs" / deb.name)
        except OSError:
            shutil.copy2(deb, store / "debs")
    env = {**os.environ, "XDG_CACHE_HOME": str(store.parent), "PYTHONHASHSEED": "12345"}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "build", "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    assert "cache hit" not in done.stdout + done.stderr
    for name in ("kubesolo-os.img", "kubesolo-os.iso", "initramfs", "vmlinuz", "data.qcow2"):
        assert run_tool(["cmp", str(out / name), str(kubesolo_image.path / name)]) == "", name
    ours = kubesolo_image.manifest
    rebuilt = json.loads((out / "manifest.json").read_text())
    assert {k for k in ours | rebuilt if ours.get(k) != rebuilt.get(k)} == {"built_at"}
