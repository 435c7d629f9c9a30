"""The bench's floor initramfs and its ratios (docs/architecture.md "Speed")."""

from __future__ import annotations

import gzip
import json
import shlex
import stat

import pytest
import yaml

from harness.artefact import Image
from harness.build import cpio
from harness.build.floor import BUSYBOX, FLOOR_INIT, FLOOR_MARKER, busybox_of, floor_archive
from harness.commands import peer_bench
from harness.commands.bench import BOOT, FLOOR, RESTORE, ratio_to_floor, table
from harness.errors import UserError


def test_floor_archive_holds_busybox_console_and_an_init_that_prints_the_marker():
    entries = {e.path: e for e in cpio.parse(floor_archive(b"\x7fELF-busybox"))}
    assert set(entries) == {"bin", BUSYBOX, "dev", "dev/console", "init"}
    assert entries[BUSYBOX].data == b"\x7fELF-busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    init = entries["init"]
    assert init.mode & 0o111 and init.data == FLOOR_INIT.encode()
    assert init.data.startswith(b"#!/bin/busybox sh\n")
    assert f"echo '{FLOOR_MARKER}'" in FLOOR_INIT and "poweroff -f" in FLOOR_INIT


def test_busybox_is_read_from_a_gzip_initramfs(tmp_path):
    image_initramfs = tmp_path / "initramfs"
    members = [cpio.Entry.directory("bin"), cpio.Entry.file(BUSYBOX, b"bb", 0o755)]
    image_initramfs.write_bytes(gzip.compress(cpio.archive(members)))
    assert busybox_of(image_initramfs) == b"bb"


def test_an_initramfs_without_busybox_is_one_clear_error(tmp_path):
    image_initramfs = tmp_path / "initramfs"
    image_initramfs.write_bytes(cpio.archive([cpio.Entry.directory("bin")]))
    with pytest.raises(UserError, match="no bin/busybox in it"):
        busybox_of(image_initramfs)


def test_boots_are_shown_as_ratios_to_the_floor_and_nothing_else_is():
    assert ratio_to_floor(BOOT, 7.0, 3.5) == "2.0x"
    assert ratio_to_floor("test shell round trip", 0.05, 3.5) == ""
    assert ratio_to_floor(BOOT, 7.0, None) == ""


def test_the_table_uses_the_median_of_the_floor_runs_and_puts_labgrid_beside_us():
    lines = table(
        {
            FLOOR: [3.0, 4.0, 100.0],
            BOOT: [8.0, 9.0, 10.0],
            peer_bench.BOOT: [11.0, 12.0, 13.0],
            RESTORE: [0.8],
        }
    )
    assert lines[2:] == [
        f"| {FLOOR} | 4.00 | 1.0x |  | 3 |",
        f"| {BOOT} | 9.00 | 2.2x | 12.00 | 3 |",
        f"| {RESTORE} | 0.80 | 0.2x |  | 1 |",
    ]


def test_labgrid_is_given_our_devices_and_the_image_s_command_line(tmp_path):
    manifest = {"default_label": "kubesolo", "labels": {"kubesolo": "console=ttyS0"}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    image = Image(tmp_path)
    text = peer_bench.environment_yaml(
        image, tmp_path / "vmlinux", tmp_path / "data.qcow2", "tcg", "kubesolo.shell"
    )
    driver = yaml.safe_load(text)["targets"]["main"]["drivers"]["QEMUDriver"]
    assert driver["machine"] == "q35,sata=off" and driver["memory"] == "512M"
    assert driver["boot_args"] == "console=ttyS0 kubesolo.shell"
    extra = shlex.split(driver["extra_args"])
    assert extra[extra.index("-initrd") + 1] == str(image.initramfs)
    assert "user,id=net0,restrict=on" in extra
