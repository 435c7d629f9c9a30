"""Every firmware boots every medium: {SeaBIOS, OVMF, OVMF with Secure Boot}
x {the ISO as a CD, the ISO written to a USB stick, the disk image on
virtio, on USB and on SATA}, each to stage 90 with the default label, and the
disk image's cells through a reboot with their state on the same disk
(docs/boot-flow.md "Media", "Bootloader"). One class per firmware: xdist
hands each to a worker of its own."""

from __future__ import annotations

import re
import time

import pytest
from boot_guest import mounts, wait_for_kubesolo
from promised import SPEC_APPEND, SPEC_DEFAULT_LABEL, SPEC_INITRD, SPEC_KERNEL, SPEC_STAGE30_MODULES

from harness import guest

pytestmark = [
    pytest.mark.boot,
    pytest.mark.long,
    pytest.mark.qemu_only("QEMU's firmware and media"),
]

MEDIA = ("iso", "iso-usb", "disk", "disk-usb", "disk-ahci")
# where the data partition is: the ISO's machines have a blank data disk on
# virtio; the disk image's is partition 3 of the boot disk
DATA_DEVICE = {
    "iso": "/dev/vda",
    "iso-usb": "/dev/vda",
    "disk": "/dev/vda3",
    "disk-usb": "/dev/sda3",
    "disk-ahci": "/dev/sda3",
}
# the driver of each medium's device, which stage 00's coldplug must load
# (and, under Secure Boot, load signed)
MEDIUM_DRIVER = {
    "iso": "ahci",
    "iso-usb": "usb_storage",
    "disk": "virtio_blk",
    "disk-usb": "usb_storage",
    "disk-ahci": "ahci",
}
# what the kernel reports of Secure Boot, by firmware (None: no UEFI, no report)
SECURE_BOOT_LINE = {
    "bios": None,
    "uefi": "secureboot: Secure boot disabled",
    "secure-boot": "secureboot: Secure boot enabled",
}
LOCKDOWN_LINE = "Kernel is locked down from EFI Secure Boot"
ISOLINUX_CELLS = {("bios", "iso"), ("bios", "iso-usb")}
# GRUB's countdown from the table's 3 s, and the default it then boots
GRUB_COUNTDOWN = "The highlighted entry will be executed automatically in 3s."
GRUB_DEFAULT = f"Booting `{SPEC_DEFAULT_LABEL}'"


def expected_cmdline(firmware: str, medium: str) -> list[str]:
    """The default label's command line as its bootloader passes it: isolinux
    adds the initrd, GRUB does not (docs/boot-flow.md "Bootloader")."""
    words = [f"BOOT_IMAGE={SPEC_KERNEL}", *SPEC_APPEND[SPEC_DEFAULT_LABEL].split()]
    return words + ([f"initrd={SPEC_INITRD}"] if (firmware, medium) in ISOLINUX_CELLS else [])


def assert_booted_on(vm, firmware: str, medium: str) -> None:
    """The guest saw the firmware, the command line and the data partition
    of its cell, and loaded its medium's driver and stage 30's modules."""
    assert vm.succeed("cat /proc/cmdline").split() == expected_cmdline(firmware, medium)
    uefi = vm.execute("test -d /sys/firmware/efi")[0] == 0
    assert uefi is (firmware != "bios"), f"/sys/firmware/efi present: {uefi}"
    dmesg = vm.succeed("dmesg")
    expected = SECURE_BOOT_LINE[firmware]
    reported = re.findall(r"secureboot: Secure boot \w+", dmesg)
    assert reported == ([expected] if expected else [])
    assert (LOCKDOWN_LINE in dmesg) is (firmware == "secure-boot")
    assert "module verification failed" not in dmesg
    assert mounts(vm)[guest.DATA_MNT].source == DATA_DEVICE[medium]
    loaded = {line.split()[0] for line in vm.succeed("cat /proc/modules").splitlines()}
    assert MEDIUM_DRIVER[medium] in loaded
    assert not set(SPEC_STAGE30_MODULES) - loaded, "stage 30's modules did not all load"


def boot_cell(machine_factory, record_property, firmware: str, medium: str):
    # the release report's matrix reads these (harness/commands/release_check.py): the
    # cell first, so that a boot that fails is a failed cell, not a missing one
    record_property("firmware", firmware)
    record_property("medium", medium)
    vm = machine_factory(boot=medium, firmware=firmware, name=f"{firmware}-{medium}")
    started = time.monotonic()
    vm.start()
    wait_for_kubesolo(vm)
    record_property("boot_seconds", round(time.monotonic() - started, 1))
    assert_booted_on(vm, firmware, medium)
    if (firmware, medium) not in ISOLINUX_CELLS:  # nothing typed: GRUB's wait ran out
        text = vm.console_text()
        assert GRUB_COUNTDOWN in text and GRUB_DEFAULT in text
    if medium.startswith("disk"):
        reboot_keeps_state(vm, firmware, medium)


def reboot_keeps_state(vm, firmware: str, medium: str) -> None:
    """The disk image keeps a node's state on its own data partition."""
    mark = f"{firmware}-{medium}-{time.time_ns()}"
    vm.succeed(f"echo {mark} > /etc/kubesolo/media-mark && sync")
    vm.reboot()
    wait_for_kubesolo(vm)
    assert vm.succeed("cat /etc/kubesolo/media-mark").strip() == mark
    assert_booted_on(vm, firmware, medium)


class TestSeaBios:
    @pytest.mark.parametrize("medium", MEDIA)
    def test_boots(self, machine_factory, record_property, medium):
        """docs/boot-flow.md "Media": SeaBIOS boots the medium to stage 90."""
        boot_cell(machine_factory, record_property, "bios", medium)


class TestOvmf:
    @pytest.mark.parametrize("medium", MEDIA)
    def test_boots(self, machine_factory, record_property, medium):
        """docs/boot-flow.md "Media": OVMF without Secure Boot boots the medium
        to stage 90; the kernel reports Secure Boot disabled."""
        boot_cell(machine_factory, record_property, "uefi", medium)


class TestOvmfSecureBoot:
    @pytest.mark.parametrize("medium", MEDIA)
    def test_boots(self, machine_factory, record_property, medium):
        """docs/boot-flow.md "Media" (Secure Boot): OVMF with Microsoft's keys and
        Secure Boot enforced boots the medium through shim and signed GRUB;
        the kernel reports Secure Boot and lockdown, and every module stages
        00 and 30 load still loads."""
        boot_cell(machine_factory, record_property, "secure-boot", medium)
