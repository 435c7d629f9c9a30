"""Secure Boot refuses a changed kernel (docs/boot-flow.md "Media", Secure
Boot): the disk image with one byte of its kernel changed, in the version
string of the setup header (a byte the signature covers and the boot never
reads), is refused by GRUB before the kernel runs when Secure Boot is
enforced, and boots to stage 90 when it is off, which shows that the byte
alone makes the difference."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from boot_guest import wait_for_kubesolo

from harness import guest
from harness.build import disk_image
from harness.build.fat import MTOOLS_ENV
from harness.disk import create_overlay

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only("QEMU's OVMF and a disk image file")]

KERNEL_VERSION_POINTER = 0x20E  # the x86 boot protocol's kernel_version field
REFUSED = r"error: bad shim signature"
KERNEL_STARTED = "Linux version"


def changed_kernel(kernel: bytes) -> bytes:
    """The kernel with the first byte of its version string flipped."""
    changed = bytearray(kernel)
    at = struct.unpack_from("<H", changed, KERNEL_VERSION_POINTER)[0] + 0x200
    changed[at] ^= 0x01
    return bytes(changed)


@pytest.fixture
def changed_disk(kubesolo_image, tmp_path: Path) -> Path:
    """An overlay on a copy of the disk image whose ESP holds the changed kernel."""
    copy, kernel = tmp_path / "kubesolo-os.img", tmp_path / "vmlinuz"
    kernel.write_bytes(changed_kernel(kubesolo_image.kernel.read_bytes()))
    subprocess.run(["cp", "--sparse=always", str(kubesolo_image.disk_image), str(copy)], check=True)
    target = f"{copy}@@{disk_image.ESP.offset}"
    subprocess.run(
        ["mcopy", "-o", "-i", target, str(kernel), "::/boot/vmlinuz"],
        check=True,
        env=MTOOLS_ENV,
    )
    return create_overlay(copy, tmp_path / "disk.qcow2", backing_format="raw")


def test_the_change_is_one_byte_of_the_version_string(kubesolo_image):
    kernel = kubesolo_image.kernel.read_bytes()
    changed = changed_kernel(kernel)
    differs = [i for i in range(len(kernel)) if kernel[i] != changed[i]]
    assert len(differs) == 1 and len(changed) == len(kernel)
    assert kernel[differs[0] : differs[0] + 4] == b"6.1."  # Debian 12's kernel


def test_a_changed_kernel_is_refused_under_secure_boot(machine_factory, changed_disk):
    """docs/boot-flow.md "Media" (Secure Boot): GRUB refuses the kernel, through
    shim, before it runs; the menu comes back; the kernel printed nothing."""
    vm = machine_factory(boot="disk", firmware="secure-boot", data_disk=changed_disk)
    vm.start()
    vm.expect_console([REFUSED], timeout=vm.config.boot_timeout)
    vm.expect_console([guest.GRUB_MENU], timeout=60)  # the menu after the refusal
    assert KERNEL_STARTED not in vm.console_text()


def test_the_same_kernel_runs_without_secure_boot(machine_factory, changed_disk):
    """The control: without Secure Boot the changed kernel boots to stage 90."""
    vm = machine_factory(boot="disk", firmware="uefi", data_disk=changed_disk)
    vm.start()
    wait_for_kubesolo(vm)
    assert "secureboot: Secure boot disabled" in vm.succeed("dmesg")
