"""RAM-only mode — the boot parameter `kubesolo.nopersist` and the
isolinux label `kubesolo-nopersist` — leaves the data disk byte-for-byte unchanged and
loses everything on reboot.

One machine per mode, on a fresh qcow2 overlay whose SHA-256 is taken before the first
boot and after the machine is powered off. The first boot writes a marker into /mnt/data
and into every persistent path, then the machine reboots (into the same mode: the ISO
machine picks the label again at the boot: prompt)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from persistence_state import (
    DATA_MOUNT,
    PERSISTENT_PATHS,
    Marker,
    path_id,
)

from harness.artefact import sha256_file

pytestmark = pytest.mark.persistence

RAM_ONLY_PATHS = (DATA_MOUNT, *PERSISTENT_PATHS)
MODES: dict[str, dict[str, Any]] = {
    "param-kubesolo.nopersist": {"kernel_args": "kubesolo.nopersist"},
    "label-kubesolo-nopersist": {"boot": "iso", "label": "kubesolo-nopersist"},
}


@dataclass(frozen=True)
class RamOnlyRun:
    data_mount_type: str  # file system on /mnt/data in the first boot
    reboot_cmdline: str  # /proc/cmdline of the boot after the reboot
    after_reboot: dict[str, str | None]  # directory -> marker content after the reboot
    disk_before: str
    disk_after: str


@pytest.fixture(
    scope="module",
    params=list(MODES),
)
def ram_only(
    request: pytest.FixtureRequest,
    session_machine_factory,
    machine_name,
    data_disk_overlay,
    marker: Marker,
) -> RamOnlyRun:
    disk = data_disk_overlay(request.param)
    disk_before = sha256_file(disk)
    vm = session_machine_factory(
        name=machine_name(request.param), data_disk=disk, **MODES[request.param]
    )
    vm.start()
    vm.wait_for_boot()
    mount_type = vm.succeed(f"awk '$2 == \"{DATA_MOUNT}\" {{ print $3 }}' /proc/mounts").strip()
    for directory in RAM_ONLY_PATHS:
        marker.write(vm, directory)
    vm.reboot()
    vm.wait_for_boot()
    reboot_cmdline = vm.succeed("cat /proc/cmdline").strip()
    after = {directory: marker.read(vm, directory) for directory in RAM_ONLY_PATHS}
    vm.power_off()
    return RamOnlyRun(mount_type, reboot_cmdline, after, disk_before, sha256_file(disk))


def _check_both_boots_ram_only(run: RamOnlyRun) -> None:
    """Both boots were RAM-only: /mnt/data was tmpfs, and the reboot chose the mode again."""
    assert run.data_mount_type == "tmpfs", (
        f"{DATA_MOUNT} is {run.data_mount_type or 'not mounted'}, not tmpfs: "
        "the boot was not RAM-only"
    )
    assert "kubesolo.nopersist" in run.reboot_cmdline.split(), (
        "the boot after the reboot was not asked for RAM-only mode (/proc/cmdline: "
        f"{run.reboot_cmdline!r}); with the ISO: the label was not typed again at the "
        "isolinux boot: prompt"
    )


@pytest.mark.qemu_only("reads the data disk file back on the host")
def test_ram_only_leaves_data_disk_unchanged(ram_only: RamOnlyRun):
    """Stage 20 — Persistent Mount (RAM-only mode) / bootloader label
    kubesolo-nopersist: two boots with files written everywhere leave the data disk
    byte-for-byte as it was."""
    _check_both_boots_ram_only(ram_only)
    assert ram_only.disk_after == ram_only.disk_before, "the data disk was written in RAM-only mode"


@pytest.mark.parametrize("directory", RAM_ONLY_PATHS, ids=path_id)
def test_ram_only_loses_files_on_reboot(ram_only: RamOnlyRun, marker: Marker, directory: str):
    """Stage 20 — Persistent Mount (RAM-only mode: tmpfs, lost on reboot) / bootloader
    label kubesolo-nopersist: a file written under /mnt/data or a persistent path is
    gone after a reboot."""
    _check_both_boots_ram_only(ram_only)
    assert ram_only.after_reboot[directory] is None, (
        f"{marker.file_in(directory)} survived a reboot in RAM-only mode"
    )
