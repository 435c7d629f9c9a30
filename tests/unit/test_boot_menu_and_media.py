"""The boot menu table and the menus written from it, the disk image's
layout, BIOS GRUB's two patches, the firmware and media tables and their QEMU
arguments (docs/boot-flow.md "Bootloader", "Media"): pure parts, no QEMU."""

from __future__ import annotations

import itertools
import json
import struct
from dataclasses import replace
from pathlib import Path

import pytest
from promised_values import P

from harness.artefact import IMAGE_FILES, Image, block_digest, sha256_file
from harness.build import bios_grub, boot_menu, disk_image
from harness.errors import UserError
from harness.vm import firmware as fw
from harness.vm.config import MachineConfig, validate
from harness.vm.qemu import QemuPlan, command_line

REPO = Path(__file__).resolve().parents[2]
TABLE = REPO / "build/boot-menu.toml"


# ---- one table, every menu -----------------------------------------------------
def test_the_table_is_the_promised_menu():
    """docs/boot-flow.md "Bootloader": four labels in order, `kubesolo` after 3 s,
    the promised kernel, initramfs and command lines."""
    menu = boot_menu.load(TABLE)
    assert menu.labels == P.SPEC_APPEND
    assert list(menu.labels) == list(P.SPEC_LABELS)
    assert (menu.default, menu.timeout_seconds) == (P.SPEC_DEFAULT_LABEL, P.SPEC_TIMEOUT_SECONDS)
    assert (menu.kernel, menu.initrd) == (P.SPEC_KERNEL, P.SPEC_INITRD)


@pytest.mark.parametrize(
    ("write", "read"),
    [
        (boot_menu.isolinux_cfg, boot_menu.parse_isolinux),
        (boot_menu.grub_cfg, boot_menu.parse_grub),
    ],
    ids=["isolinux", "grub"],
)
def test_every_menu_offers_exactly_the_table(write, read):
    """Each bootloader's menu, read back, is the table: labels, their order,
    command lines, files, the default and the wait."""
    menu = boot_menu.load(TABLE)
    assert read(write(menu)) == menu


@pytest.mark.parametrize(
    ("write", "read", "old", "new"),
    [
        (boot_menu.isolinux_cfg, boot_menu.parse_isolinux, "TIMEOUT 30", "TIMEOUT 50"),
        (boot_menu.isolinux_cfg, boot_menu.parse_isolinux, "kubesolo.shell", "kubesolo.sh"),
        (boot_menu.grub_cfg, boot_menu.parse_grub, "timeout=3", "timeout=5"),
        (boot_menu.grub_cfg, boot_menu.parse_grub, "default=kubesolo", "default=kubesolo-debug"),
        (boot_menu.grub_cfg, boot_menu.parse_grub, "kubesolo.nopersist", ""),
        (boot_menu.grub_cfg, boot_menu.parse_grub, "/boot/initramfs", "/boot/initrd.img"),
    ],
)
def test_a_menu_that_drifts_from_the_table_is_seen(write, read, old, new):
    menu = boot_menu.load(TABLE)
    text = write(menu)
    assert old in text
    try:
        assert read(text.replace(old, new, 1)) != menu
    except UserError as err:  # a menu that cannot be read as one is seen too
        assert "\n" not in str(err)


def test_a_grub_entry_whose_id_is_not_its_label_is_refused():
    text = boot_menu.grub_cfg(boot_menu.load(TABLE))
    with pytest.raises(UserError, match="entry 'kubesolo-dbg' has the id 'kubesolo-debug'"):
        boot_menu.parse_grub(text.replace("'kubesolo-debug'", "'kubesolo-dbg'"))


def test_grub_menu_terminals_follow_the_platform():
    """Under UEFI the firmware's console (OVMF copies it to the serial port),
    under BIOS the serial port and the screen."""
    text = boot_menu.grub_cfg(boot_menu.load(TABLE))
    efi, bios = text.split("else\n", 1)
    assert "terminal_output console\n" in efi and "serial" not in efi
    assert "serial --unit=0 --speed=115200" in bios
    assert "terminal_input serial console" in bios and "terminal_output serial console" in bios


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('default = "kubesolo"', 'default = "nope"'),
        ('name = "kubesolo-debug"', 'name = "kubesolo"'),
        ("timeout_seconds = 3", ""),
        ("[[label]]", "[[label"),
    ],
)
def test_a_bad_table_is_one_line(tmp_path, change, message):
    table = tmp_path / "menu.toml"
    table.write_text(TABLE.read_text().replace(change, message, 1))
    with pytest.raises(UserError, match=str(table)) as err:
        boot_menu.load(table)
    assert "\n" not in str(err.value)


def test_labels_have_their_places():
    menu = boot_menu.load(TABLE)
    assert [menu.index(label) for label in P.SPEC_LABELS] == [0, 1, 2, 3]


# ---- the disk image's layout ---------------------------------------------------
def test_partitions_are_aligned_contiguous_and_fit():
    """docs/boot-flow.md "Media": BIOS boot 1 MiB, ESP 256 MiB, data 2 GiB, in
    that order from 1 MiB, with 1 MiB left for the backup GPT."""
    parts = disk_image.PARTITIONS
    assert [(p.number, p.type_code, p.size_mib) for p in parts] == [
        (1, "EF02", 1),
        (2, "EF00", 256),
        (3, "8300", 2048),
    ]
    assert parts[0].start_mib == 1
    for before, after in itertools.pairwise(parts):
        assert after.start_mib == before.start_mib + before.size_mib
    assert parts[-1].start_mib + parts[-1].size_mib + 1 == disk_image.DISK_MIB
    assert disk_image.DATA.name == "KSOLODATA"


def test_guids_come_from_the_key():
    args = disk_image.sgdisk_args("k1")
    assert args == disk_image.sgdisk_args("k1")
    assert args != disk_image.sgdisk_args("k2")
    assert "-n3:528384:4722687" in args and "-t2:EF00" in args


def test_bios_grub_reads_its_menu_from_the_esp():
    assert disk_image.BIOS_PREFIX == "(,gpt2)/EFI/debian"
    assert disk_image.ESP.number == 2


# ---- BIOS GRUB's patches -------------------------------------------------------
def test_mbr_gets_boot_code_and_keeps_the_partition_table():
    mbr = bytes(range(256)) * 2
    boot = b"\xeb\x63" + bytes(510)
    out = bios_grub.patch_mbr(mbr, boot, 2048)
    assert len(out) == 512
    assert out[:2] == b"\xeb\x63"
    assert out[0x1B8:] == mbr[0x1B8:]  # disk signature, partitions, 55AA
    assert out[0x03:0x5A] == mbr[0x03:0x5A]
    assert struct.unpack_from("<Q", out, 0x5C)[0] == 2048
    assert out[0x66:0x68] == b"\x90\x90"
    with pytest.raises(UserError):
        bios_grub.patch_mbr(mbr[:100], boot, 2048)


def test_core_lists_the_sectors_after_its_first():
    core = b"\1" * 1300  # 3 sectors, the last one short
    out = bios_grub.patch_core(core, 2048)
    assert len(out) == 1536
    assert out[512:1300] == core[512:1300] and out[1300:] == bytes(236)
    assert struct.unpack_from("<QHH", out, 500) == (2049, 2, 0x820)


# ---- firmware and media --------------------------------------------------------
@pytest.mark.parametrize(
    ("firmware", "boot", "loader"),
    [
        ("bios", "kernel", "qemu"),
        ("bios", "iso", "isolinux"),
        ("bios", "iso-usb", "isolinux"),
        ("bios", "disk", "grub"),
        ("bios", "disk-usb", "grub"),
        ("uefi", "iso", "grub"),
        ("secure-boot", "iso-usb", "grub"),
        ("secure-boot", "disk-ahci", "grub"),
    ],
)
def test_bootloader_of_each_pair(firmware, boot, loader):
    assert fw.bootloader(firmware, boot) == loader


def test_a_missing_firmware_file_names_the_package(tmp_path):
    with pytest.raises(UserError, match=r"OVMF_CODE_4M.ms.fd not found: install Debian's ovmf"):
        fw.firmware_files(fw.FIRMWARES["secure-boot"], tmp_path)
    assert fw.firmware_files(fw.FIRMWARES["bios"], tmp_path) is None


def test_firmware_files_are_debians():
    assert (fw.FIRMWARES["uefi"].code, fw.FIRMWARES["uefi"].vars_template) == (
        "OVMF_CODE_4M.fd",
        "OVMF_VARS_4M.fd",
    )
    secure = fw.FIRMWARES["secure-boot"]
    assert (secure.code, secure.vars_template, secure.secure_boot) == (
        "OVMF_CODE_4M.ms.fd",
        "OVMF_VARS_4M.ms.fd",
        True,
    )


PLAN = QemuPlan(accel="tcg", memory_mb=512, cpus=1, boot="disk", disk=Path("/r/d.qcow2"))


def test_secure_boot_command_line():
    plan = replace(
        PLAN,
        firmware="secure-boot",
        firmware_code=Path("/fw/code.fd"),
        firmware_vars=Path("/r/vars.fd"),
    )
    cmd = command_line(plan)
    assert cmd[cmd.index("-machine") + 1].startswith("q35,smm=on,")
    assert "if=pflash,format=raw,unit=0,file=/fw/code.fd,readonly=on" in cmd
    assert "if=pflash,format=raw,unit=1,file=/r/vars.fd" in cmd
    assert "driver=cfi.pflash01,property=secure,value=on" in cmd
    plain = command_line(replace(plan, firmware="uefi"))
    assert "driver=cfi.pflash01,property=secure,value=on" not in plain
    assert "smm=on" not in plain[plain.index("-machine") + 1]
    with pytest.raises(UserError, match="needs its code and variables"):
        command_line(replace(plan, firmware_vars=None))


@pytest.mark.parametrize(
    ("boot", "device", "fmt"),
    [
        ("iso", "ide-cd,bus=ide.0,drive=boot0,bootindex=0", "raw"),
        ("iso-usb", "usb-storage,bus=usb.0,removable=on,drive=boot0,bootindex=0", "raw"),
        ("disk", "virtio-blk-pci,drive=boot0,bootindex=0", "qcow2"),
        ("disk-usb", "usb-storage,bus=usb.0,removable=on,drive=boot0,bootindex=0", "qcow2"),
        ("disk-ahci", "ide-hd,bus=ide.0,drive=boot0,bootindex=0", "qcow2"),
    ],
)
def test_each_medium_is_first_in_the_boot_order(boot, device, fmt):
    cmd = command_line(replace(PLAN, boot=boot, iso=Path("/i/k.iso")))
    assert device in cmd
    (drive,) = [a for a in cmd if a.startswith("file=") and "id=boot0" in a]
    assert f"format={fmt}" in drive
    assert ("readonly=on" in drive) is (fmt == "raw")  # the ISO is never written
    assert ("qemu-xhci,id=usb" in cmd) is ("usb" in boot)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"firmware": "coreboot"}, "firmware='coreboot': use one of bios, uefi, secure-boot"),
        ({"boot": "floppy"}, "boot='floppy': use one of kernel, iso, iso-usb, disk"),
        ({"firmware": "uefi"}, "a kernel boot starts the kernel itself"),
        ({"boot": "disk", "data_disk": False}, "the data partition is on the boot disk"),
        ({"boot": "disk", "data_disk_readonly": True}, "the data partition is on the boot disk"),
    ],
)
def test_bad_firmware_or_medium_is_one_line(fields, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        validate(MachineConfig(**fields))


# ---- the disk image's digest ---------------------------------------------------
def test_block_digest_ignores_sparseness_and_sees_one_byte(tmp_path):
    sparse, dense = tmp_path / "kubesolo-os.img", tmp_path / "dense.img"
    with sparse.open("wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"data")
    dense.write_bytes(sparse.read_bytes())
    assert block_digest(sparse) == block_digest(dense)
    assert block_digest(sparse).startswith("blocks:")
    with dense.open("r+b") as f:
        f.seek(5 << 20)
        f.write(b"\1")
    assert block_digest(dense) != block_digest(sparse)
    grown = tmp_path / "grown.img"
    grown.write_bytes(sparse.read_bytes() + bytes(4096))
    assert block_digest(grown) != block_digest(sparse)


# ---- images of earlier releases --------------------------------------------------
def _image_dir(directory: Path, files: tuple[str, ...], named: tuple[str, ...]) -> Path:
    """An image directory holding `files`, its manifest naming the digests of `named`."""
    kernel = bytearray(0x300)
    kernel[0x202:0x206] = b"HdrS"
    for name in files:
        (directory / name).write_bytes(bytes(kernel) if name == "vmlinuz" else b"x")
    manifest = {
        "files": {n: sha256_file(directory / n) for n in named},
        "labels": dict.fromkeys(P.SPEC_LABELS, ""),
        "default_label": "kubesolo",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


def test_an_earlier_releases_image_without_a_disk_image_opens(tmp_path):
    """The upgrade checks boot images built before the disk image existed."""
    old = tuple(f for f in IMAGE_FILES if f not in ("kubesolo-os.img", "manifest.json"))
    Image.open(_image_dir(tmp_path, old, old))


def test_a_disk_image_its_manifest_names_must_be_there(tmp_path):
    files = tuple(f for f in IMAGE_FILES if f != "manifest.json")
    directory = _image_dir(tmp_path, files, files)
    (directory / "kubesolo-os.img").unlink()
    with pytest.raises(UserError, match=r"kubesolo-os\.img is missing; build one"):
        Image.open(directory)


# ---- the release image's menus -------------------------------------------------------
def test_the_release_menu_is_locked_and_has_no_shell_label():
    """docs/boot-flow.md "Release console": the table's release menu lacks
    kubesolo-shell; its GRUB menu has a superuser nobody can log in as and
    boots every label unrestricted; the test image's menu is open."""
    release = boot_menu.load(TABLE, "release")
    assert tuple(release.labels) == ("kubesolo", "kubesolo-debug", "kubesolo-nopersist")
    assert release.locked and not boot_menu.load(TABLE).locked
    text = boot_menu.grub_cfg(release)
    assert 'set superusers="kubesolo-locked"' in text and "password" not in text
    assert text.count("--unrestricted {") == 3
    assert boot_menu.parse_grub(text) == release
    assert "superusers" not in boot_menu.grub_cfg(boot_menu.load(TABLE))
    with pytest.raises(UserError, match="must each be --unrestricted"):
        boot_menu.parse_grub(text.replace(" --unrestricted {", " {", 1))


def test_an_image_missing_a_file_its_manifest_names_is_damaged(tmp_path):
    """A cache entry with a file gone is no cache hit (harness.build.builder)."""
    files = tuple(f for f in IMAGE_FILES if f != "manifest.json")
    directory = _image_dir(tmp_path, files, files)
    (directory / "kubesolo-os.iso").unlink()
    assert Image(directory).problem() == "kubesolo-os.iso missing"
    (directory / "vmlinuz").unlink()
    assert Image(directory).problem() == "kubesolo-os.iso, vmlinuz missing"
