"""Firmware and boot media: which firmware a machine starts, which medium it
boots from, and which bootloader that pair runs (docs/boot-flow.md "Media").
Tables and pure functions; the only I/O is looking for the firmware files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

OVMF_DIR = Path("/usr/share/OVMF")


@dataclass(frozen=True)
class Firmware:
    name: str
    code: str | None  # a file of Debian's ovmf; None: QEMU's SeaBIOS
    vars_template: str | None  # copied per machine: the firmware writes its variables
    secure_boot: bool

    @property
    def uefi(self) -> bool:
        return self.code is not None


FIRMWARES = {
    f.name: f
    for f in (
        Firmware("bios", None, None, False),
        Firmware("uefi", "OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", False),
        # Microsoft's keys enrolled and Secure Boot on: shim, signed by Microsoft's
        # UEFI CA, is what such a board runs
        Firmware("secure-boot", "OVMF_CODE_4M.ms.fd", "OVMF_VARS_4M.ms.fd", True),
    )
}


@dataclass(frozen=True)
class Medium:
    name: str
    source: str  # "none" (a kernel boot), "iso", or "disk" (the disk image)
    device: str  # how the guest sees it: QEMU's -device


# boot medium -> where it comes from and the device it sits on
MEDIA = {
    m.name: m
    for m in (
        Medium("kernel", "none", ""),
        Medium("iso", "iso", "ide-cd,bus=ide.0"),  # a CD on the SATA controller
        Medium("iso-usb", "iso", "usb-storage,bus=usb.0,removable=on"),  # written to a stick
        Medium("disk", "disk", "virtio-blk-pci"),  # a virtual machine's disk
        Medium("disk-usb", "disk", "usb-storage,bus=usb.0,removable=on"),  # a USB stick
        Medium("disk-ahci", "disk", "ide-hd,bus=ide.0"),  # a SATA SSD
    )
}


def bootloader(firmware: str, boot: str) -> str:
    """What boots the kernel: isolinux (BIOS from the ISO), GRUB (UEFI, or the
    disk image), or QEMU itself (a kernel boot)."""
    medium = MEDIA[boot]
    if medium.source == "none":
        return "qemu"
    return "isolinux" if medium.source == "iso" and not FIRMWARES[firmware].uefi else "grub"


def firmware_files(firmware: Firmware, directory: Path = OVMF_DIR) -> tuple[Path, Path] | None:
    """The firmware's code and variable template, if it has them; a missing
    file is one line that names Debian's package."""
    if firmware.code is None or firmware.vars_template is None:
        return None
    paths = (directory / firmware.code, directory / firmware.vars_template)
    for path in paths:
        if not path.is_file():
            raise UserError(
                f"firmware {firmware.name}: {path} not found: install Debian's ovmf "
                "(apt-get install ovmf)"
            )
    return paths


def firmware_args(firmware: Firmware, code: Path, variables: Path) -> list[str]:
    """QEMU's arguments for UEFI firmware: its code read-only, this machine's
    variables writable; Secure Boot also needs SMM (see machine_options) and
    a flash only SMM may write."""
    args = [
        "-drive",
        f"if=pflash,format=raw,unit=0,file={code},readonly=on",
        "-drive",
        f"if=pflash,format=raw,unit=1,file={variables}",
    ]
    if firmware.secure_boot:
        args += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
    return args


def machine_options(firmware: Firmware) -> str:
    return ",smm=on" if firmware.secure_boot else ""


def medium_args(boot: str, path: Path, read_only: bool) -> list[str]:
    """QEMU's arguments for the boot medium, first in the boot order."""
    medium = MEDIA[boot]
    fmt = "raw" if medium.source == "iso" else "qcow2"  # the disk image: an overlay
    drive = f"file={path},if=none,id=boot0,format={fmt}" + (",readonly=on" if read_only else "")
    drive += ",media=cdrom" if medium.device.startswith("ide-cd") else ""
    args = ["-drive", drive]
    if "bus=usb.0" in medium.device:
        args += ["-device", "qemu-xhci,id=usb"]
    return [*args, "-device", f"{medium.device},drive=boot0,bootindex=0"]
