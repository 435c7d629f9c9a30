"""The built image directory (issue "KubeSolo OS image"): exactly the six
files, a manifest that names every input, a root-owned initramfs with
/dev/console, a hybrid ISO and a blank KSOLODATA ext4 disk."""

from __future__ import annotations

import hashlib
import logging
import stat
import subprocess
from pathlib import Path

import pytest

from harness.artefact import IMAGE_FILES, file_digest
from harness.build import cpio
from harness.build.builder import BuildRequest, build


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_image_directory_holds_exactly_the_six_files(kubesolo_image):
    assert sorted(p.name for p in kubesolo_image.path.iterdir()) == sorted(IMAGE_FILES)


def test_manifest_names_every_input_and_output(kubesolo_image):
    manifest = kubesolo_image.manifest
    assert manifest["flavour"] == "test"
    assert manifest["kubesolo"] in ("standin", "real")
    names = {p["name"] for p in manifest["packages"]}
    assert {"linux-image-amd64", "busybox-static", "isolinux", "syslinux-common"} <= names
    for package in manifest["packages"]:
        assert package["version"] and len(package["sha256"]) == 64
    for name, digest in manifest["files"].items():
        assert file_digest(kubesolo_image.path / name) == digest
    assert manifest["default_label"] == "kubesolo"


def test_a_second_build_is_a_cache_hit(kubesolo_image, pytestconfig, caplog):
    if pytestconfig.getoption("kubesolo_image") or pytestconfig.getoption("kubesolo_bin"):
        pytest.skip("the session image was not built from the default inputs")
    with caplog.at_level(logging.INFO, logger="harness.build"):
        again = build(BuildRequest(flavour="test"))
    assert again.manifest["cache_key"] == kubesolo_image.manifest["cache_key"]
    assert any("cache hit" in r.getMessage() for r in caplog.records)


def test_initramfs_is_root_owned_with_console_init_and_modules(kubesolo_image):
    entries = {e.path: e for e in cpio.parse(kubesolo_image.initramfs.read_bytes())}
    console = entries["dev/console"]
    assert stat.S_ISCHR(console.mode) and console.rdev == (5, 1)
    init = entries["init"]  # the rdinit: binds the root onto itself, then chroots
    assert stat.S_ISREG(init.mode) and init.mode & 0o111
    assert b"exec chroot . /sbin/init" in init.data
    assert entries["sbin/init"].mode & 0o111
    version = kubesolo_image.manifest["kernel_version"]
    for name in ("modules.dep", "modules.alias"):
        assert entries[f"lib/modules/{version}/{name}"].data
    assert entries["usr/lib/kubesolo-os/bin/kubesolo"].mode & 0o111


def test_iso_is_hybrid_and_bootable(kubesolo_image):
    head = kubesolo_image.iso.read_bytes()[:512]
    assert head[510:512] == b"\x55\xaa"  # isohybrid MBR
    listing = subprocess.run(
        ["xorriso", "-indev", str(kubesolo_image.iso), "-find", "/", "-type", "f"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for path in (
        "/isolinux/isolinux.bin",
        "/isolinux/ldlinux.c32",
        "/isolinux/isolinux.cfg",
        "/boot/vmlinuz",
        "/boot/initramfs",
    ):
        assert f"'{path}'" in listing


def test_data_disk_is_blank_ext4_labelled_ksolodata(kubesolo_image, tmp_path):
    raw = tmp_path / "head.raw"
    subprocess.run(
        [
            "qemu-img",
            "dd",
            "-f",
            "qcow2",
            "-O",
            "raw",
            "bs=4096",
            "count=1",
            f"if={kubesolo_image.data_disk}",
            f"of={raw}",
        ],
        check=True,
    )
    superblock = raw.read_bytes()[1024:2048]
    assert superblock[0x38:0x3A] == b"\x53\xef"  # ext2/3/4 magic
    assert superblock[0x78:0x88].rstrip(b"\0") == b"KSOLODATA"
