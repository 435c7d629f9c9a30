"""The bootable media of an image directory, made from its kernel and
initramfs and the boot-menu table: kubesolo-os.iso and kubesolo-os.img
(docs/boot-flow.md "Media"). The builder makes them, and so does every
command that makes an image from another (inject-ssh)."""

from __future__ import annotations

from pathlib import Path

from harness.build import boot_menu, debian
from harness.build.boot_files import boot_files
from harness.build.disk_image import esp_files, make_disk_image
from harness.build.iso import make_iso

MENU_TABLE = "boot-menu.toml"


def make_media(
    work: Path, key: str, unpacked: dict[str, Path], build_dir: Path, flavour: str
) -> boot_menu.BootMenu:
    """Write kubesolo-os.iso and kubesolo-os.img into `work` from its vmlinuz
    and initramfs, with the bootloaders of the unpacked boot packages; the
    menu they offer (the flavour's: a release's is locked)."""
    menu = boot_menu.load(build_dir / MENU_TABLE, flavour)
    grub_cfg, files = boot_menu.grub_cfg(menu), boot_files(unpacked)
    kernel, initramfs = work / "vmlinuz", work / "initramfs"
    make_iso(
        work / "kubesolo-os.iso", kernel, initramfs, boot_menu.isolinux_cfg(menu), grub_cfg, files
    )
    esp = {**files.efi_boot("grub-efi"), "boot/vmlinuz": kernel, "boot/initramfs": initramfs}
    make_disk_image(work / "kubesolo-os.img", key, esp_files(esp, grub_cfg), files["grub-pc"])
    return menu


def boot_packages(build_dir: Path, cache: Path) -> dict[str, Path]:
    """The boot packages of build/packages.toml, unpacked (name -> root)."""
    specs = [s for s in debian.load_specs(build_dir / "packages.toml", False) if s.into == "boot"]
    resolved = debian.resolve_memoized(specs, cache / "apt-resolution-boot.json")
    return {pkg.spec.name: debian.unpacked(pkg, cache) for pkg in resolved}
