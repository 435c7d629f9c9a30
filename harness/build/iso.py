"""kubesolo-os.iso: one file that boots as a CD and written raw to a USB
stick, under BIOS (isolinux, with its isohybrid MBR) and UEFI (an El Torito
EFI image, also a GPT partition, holding shim and Debian's signed GRUB)."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.build import fat
from harness.build.boot_files import BootFiles
from harness.reproducible import XORRISO_ENV, fix_times
from harness.tools import run_tool

VOLUME_ID = "KUBESOLO_OS"
EFI_IMAGE = "boot/efiboot.img"  # the El Torito EFI image, inside the ISO
EFI_IMAGE_MIB = 8  # shim and GRUB (5 MB)
DISK_INFO = ".disk/info"  # the file the CD GRUB searches for to find the ISO


def make_iso(
    out: Path, kernel: Path, initramfs: Path, isolinux_cfg: str, grub_cfg: str, files: BootFiles
) -> Path:
    """Write the hybrid ISO to `out` (a work directory beside it is removed)."""
    root = out.with_name(out.name + ".tree")
    for d in ("isolinux", "boot/grub", ".disk"):
        (root / d).mkdir(parents=True)
    shutil.copy2(files["isolinux.bin"], root / "isolinux/isolinux.bin")
    shutil.copy2(files["ldlinux.c32"], root / "isolinux/ldlinux.c32")
    (root / "isolinux/isolinux.cfg").write_text(isolinux_cfg)
    (root / "boot/grub/grub.cfg").write_text(grub_cfg)
    (root / DISK_INFO).write_text("KubeSolo OS\n")
    shutil.copy2(kernel, root / "boot/vmlinuz")
    shutil.copy2(initramfs, root / "boot/initramfs")
    fat.fat_image(root / EFI_IMAGE, EFI_IMAGE_MIB, "KSOLOEFI", files.efi_boot("grub-efi-cd"))
    fix_times(root)
    try:
        run_tool(
            [
                "xorriso", "-as", "mkisofs", "-quiet", "-o", str(out), "-V", VOLUME_ID, "-J", "-R",
                # BIOS: isolinux, from a CD and (through the MBR) from a disk
                "-isohybrid-mbr", str(files["isohdpfx.bin"]),
                "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
                "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
                # UEFI: the EFI image, from a CD and (as a GPT partition) from a disk
                "-eltorito-alt-boot", "-e", EFI_IMAGE, "-no-emul-boot", "-isohybrid-gpt-basdat",
                str(root),
            ],
            env=XORRISO_ENV,
        )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
