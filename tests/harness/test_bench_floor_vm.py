"""The bench's floor boot on a real QEMU (docs/architecture.md "Speed")."""

from __future__ import annotations

import re
import time

import pytest

from harness.build.floor import FLOOR_MARKER, write_floor_initramfs

pytestmark = pytest.mark.boot


def test_floor_initramfs_prints_its_marker_and_powers_off(
    machine_factory, kubesolo_image, tmp_path
):
    """docs/architecture.md "Speed": the image's kernel, on the image's QEMU
    command line, runs the floor's /init: its busybox prints the marker, then
    `poweroff -f` ends QEMU."""
    floor = write_floor_initramfs(kubesolo_image.initramfs, tmp_path / "floor.cpio")
    vm = machine_factory(initramfs=floor, data_disk=False)
    vm.start()
    vm.wait_for_console(re.escape(FLOOR_MARKER), timeout=120)
    deadline = time.monotonic() + 60
    while vm.is_up and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not vm.is_up, "QEMU still runs: the floor's poweroff -f did not end it"
