"""The bootloaders' files, each taken from the Debian package that ships it
(build/packages.toml, `into = "boot"`): isolinux for BIOS from the ISO,
shim and Debian's signed GRUB for UEFI (and Secure Boot), GRUB's i386-pc
modules for BIOS from the disk image."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

# name -> (Debian package, path in it)
BOOT_FILES = {
    "isolinux.bin": ("isolinux", "usr/lib/ISOLINUX/isolinux.bin"),
    "isohdpfx.bin": ("isolinux", "usr/lib/ISOLINUX/isohdpfx.bin"),
    "ldlinux.c32": ("syslinux-common", "usr/lib/syslinux/modules/bios/ldlinux.c32"),
    # shim, signed by Microsoft's UEFI CA; it loads grubx64.efi from its own directory
    "shim": ("shim-signed", "usr/lib/shim/shimx64.efi.signed"),
    # signed GRUB for a disk: reads /EFI/debian/grub.cfg on its ESP
    "grub-efi": ("grub-efi-amd64-signed", "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
    # signed GRUB for a CD: finds the medium holding /.disk/info, reads its /boot/grub/grub.cfg
    "grub-efi-cd": ("grub-efi-amd64-signed", "usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed"),
    "grub-pc": ("grub-pc-bin", "usr/lib/grub/i386-pc"),  # boot.img and the modules
}
# where UEFI firmware looks on a removable medium, and where shim finds GRUB
EFI_BOOT = {"shim": "EFI/BOOT/BOOTX64.EFI", "grub": "EFI/BOOT/grubx64.efi"}


@dataclass(frozen=True)
class BootFiles:
    paths: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def efi_boot(self, grub: str) -> dict[str, Path | bytes]:
        """EFI/BOOT of a medium: shim as the removable-media loader, `grub` beside it."""
        return {EFI_BOOT["shim"]: self["shim"], EFI_BOOT["grub"]: self[grub]}


def boot_files(unpacked: dict[str, Path]) -> BootFiles:
    """Every boot file in the unpacked packages; a missing one is one line."""
    paths = {}
    for name, (package, inside) in BOOT_FILES.items():
        path = unpacked[package] / inside
        if not path.exists():
            raise UserError(f"{package} has no {inside}: is build/packages.toml current?")
        paths[name] = path
    return BootFiles(paths)
