"""Disk faults at stage 20 (docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk
faults"): a full data partition boots with a warning; a damaged superblock, a
read-only disk and a disk that never appears each stop the boot with one error line
that says what to do, then the emergency shell; a disk that appears within the 30 s
wait boots. Where the OS must not write, the disk's raw content is hashed before and
after: nothing formats, repairs or touches it.

Each class is one fault, so that `--dist loadscope` can boot them on different workers."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from console_times import first_arrival
from disk_faults import (
    LAYOUT_DIRS,
    backup_superblock,
    debugfs_edit,
    full_ext4_qcow2,
    raw_sha256,
    zero_primary_superblock,
)

from harness import guest
from harness.disk import ext4_qcow2
from harness.vm.machine import Machine
from harness.vm.protocols import Target

pytestmark = pytest.mark.persistence

DEVICE = "/dev/vda"  # the data disk: the machine's only virtio-blk disk
BY_DEVICE = f"console=ttyS0,115200n8 kubesolo.data={DEVICE}"
STAGE = "20-persistent-mount.sh"
EXPECTS_ERROR = frozenset({"stage-error"})  # a kernel panic still fails
# docs "Failure Handling": the two error lines of every failed stage.
GENERIC_ERRORS = (guest.stage_failed(STAGE), rf"{guest.ERROR_MARKER} Boot failed: ")
WAITING = rf"Waiting up to 30s for data device LABEL={guest.DATA_LABEL}"
MISSING = rf"{guest.ERROR_MARKER} data device LABEL={guest.DATA_LABEL} did not appear within 30s"
CLOUD_INIT = Path(__file__).resolve().parents[2] / "fixtures" / "cloud-init" / "static.yaml"
SMALL_DISK = "32M"  # 1 KiB blocks: the first backup superblock is at block 8193


def console_lines(vm: Target) -> list[str]:
    return vm.console_text().replace("\r", "").splitlines()


def the_error(vm: Target) -> str:
    """The one [ERROR] line of this boot besides the generic lines of a failed stage."""
    errors = [line for line in console_lines(vm) if re.search(guest.ERROR_MARKER, line)]
    specific = [e for e in errors if not any(re.search(g, e) for g in GENERIC_ERRORS)]
    assert len(specific) == 1, f"expected one error line besides {GENERIC_ERRORS}: {errors}"
    assert len(errors) == 1 + len(GENERIC_ERRORS), errors
    return specific[0]


def boot_to_emergency_shell(vm: Target) -> None:
    vm.start()
    vm.wait_for_console(guest.stage_failed(STAGE), timeout=vm.config.boot_timeout)
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=60)
    assert not re.search(guest.stage_started("30-kernel-modules.sh"), vm.console_text())
    assert not re.search(r"Mounted \S+ on ", vm.console_text())


def quit_qemu(vm: Machine, timeout: float = 30) -> None:
    """QMP quit: QEMU flushes and closes its disks (unlike a power cut), so the
    disk file then holds everything the guest wrote."""
    vm.qmp("quit")
    deadline = time.monotonic() + timeout
    while vm.is_up and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not vm.is_up, "QEMU did not quit"
    vm.power_off()


class TestFullDisk:
    def test_full_partition_without_its_network_directory_boots(self, machine_factory, tmp_path):
        """docs/boot-flow.md "Disk faults" ("A full partition boots"): a full
        partition whose layout lacks network/ (no block is free to make it)
        still boots; only a missing persistent directory stops stage 20."""
        network_dir = Path(guest.SAVED_NETWORK).parent
        dirs = tuple(d for d in LAYOUT_DIRS if d != network_dir.name)
        vm = machine_factory(data_disk=full_ext4_qcow2(tmp_path / "data.qcow2", "16M", {}, dirs))
        vm.start()
        vm.wait_for_boot()
        vm.fail(f"test -e {network_dir}")
        vm.succeed(f"test -d {guest.DATA_MNT}/kubesolo && test -d {guest.DATA_MNT}/usr-local/bin")

    def test_full_data_partition_boots_with_warnings(self, machine_factory, tmp_path):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (full): a data
        partition with no free block still boots to stage 90; stage 20 warns that it
        is full, and the saves that fail on it (stage 60's hostname, stage 50's
        cloud-init network) are warnings that leave no empty file behind; the
        network is still the cloud-init one."""
        disk = full_ext4_qcow2(
            tmp_path / "data.qcow2",
            "16M",
            {"etc-kubesolo/cloud-init.yaml": CLOUD_INIT.read_text()},
        )
        vm = machine_factory(data_disk=disk)
        vm.start()
        vm.wait_for_boot()
        vm.wait_for_console(guest.STANDIN_ACCEPTED, timeout=60)
        df = vm.succeed(f"df -Pk {guest.DATA_MNT}").splitlines()[1].split()
        assert df[3] == "0", f"premise: the data partition is full: {df}"
        text = vm.console_text()
        warn = guest.WARN_MARKER
        assert re.search(rf"{warn} data partition {DEVICE} is full \(0 KiB", text), text
        assert re.search(rf"{warn} cannot save the hostname to /etc/kubesolo/hostname", text)
        assert re.search(rf"{warn} cannot save the network configuration to ", text)
        leftovers = ("/etc/kubesolo/hostname", guest.SAVED_NETWORK, guest.SAVED_NETWORK + ".tmp")
        for path in leftovers:
            vm.fail(f"test -e {path}")
        assert "NET_SOURCE='cloud-init'" in vm.succeed(f"cat {guest.NETWORK_ENV}")


@pytest.fixture
def corrupt_disk(tmp_path: Path) -> tuple[Path, int, str]:
    """(a small KSOLODATA disk whose primary superblock is zeros, the block of its
    first backup superblock, the sha256 of its raw content)."""
    disk = ext4_qcow2(tmp_path / "data.qcow2", SMALL_DISK)
    backup = backup_superblock(disk)
    zero_primary_superblock(disk)
    return disk, backup, raw_sha256(disk)


@pytest.mark.qemu_only("reads the data disk file back after a QMP quit; names it by device")
class TestCorruptSuperblock:
    def test_by_device_one_error_names_the_repair_and_the_disk_is_unchanged(
        self, machine_factory, corrupt_disk
    ):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (damaged
        superblock): with kubesolo.data=/dev/vda, one error line names the device,
        the e2fsck command that repairs it from the backup superblock and
        kubesolo.nopersist; the emergency shell opens; the disk's bytes are
        unchanged."""
        disk, backup, before = corrupt_disk
        vm = machine_factory(base_cmdline=BY_DEVICE, data_disk=disk, allow_failures=EXPECTS_ERROR)
        boot_to_emergency_shell(vm)
        error = the_error(vm)
        assert f"the ext4 superblock of {DEVICE} is damaged" in error, error
        assert f"'e2fsck -b {backup} {DEVICE}'" in error and "kubesolo.nopersist" in error
        quit_qemu(vm)
        assert raw_sha256(disk) == before, "the OS wrote to a disk with a damaged superblock"

    def test_by_device_the_repair_the_error_names_works(self, machine_factory, corrupt_disk):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (damaged
        superblock) and "Failure Handling": the e2fsck command of the error line,
        run in the emergency shell, repairs the disk, and `exit` boots to stage 90
        with the data partition mounted."""
        disk, backup, _ = corrupt_disk
        vm = machine_factory(base_cmdline=BY_DEVICE, data_disk=disk, allow_failures=EXPECTS_ERROR)
        boot_to_emergency_shell(vm)
        assert f"'e2fsck -b {backup} {DEVICE}'" in the_error(vm)
        # -y: the test shell has no terminal to answer e2fsck's questions on
        status, output = vm.execute(f"e2fsck -y -b {backup} {DEVICE}")
        assert status == 1, f"e2fsck should have repaired the file system: {status} {output}"
        retry = vm.console_cursor()
        vm.send_console("exit\r")
        vm.wait_for_console(r"Retrying the boot sequence", timeout=30, since=retry)
        vm.wait_for_console(
            guest.BOOT_MARKER, timeout=vm.config.boot_timeout, since=retry, allow_failures=()
        )
        mounted = vm.succeed(f"awk '$2 == \"{guest.DATA_MNT}\"' /proc/mounts").split()
        assert mounted[:3] == [DEVICE, guest.DATA_MNT, "ext4"], mounted

    @pytest.mark.long
    def test_by_label_the_missing_disk_error_names_the_damaged_disk(
        self, machine_factory, corrupt_disk
    ):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (damaged
        superblock): by label, a disk whose superblock is gone has no label, so after
        the 30 s wait the error is the missing-disk one, which also names the damaged
        disk and its repair; the disk's bytes are unchanged."""
        disk, backup, before = corrupt_disk
        vm = machine_factory(data_disk=disk, allow_failures=EXPECTS_ERROR)
        boot_to_emergency_shell(vm)
        error = the_error(vm)
        assert re.search(MISSING, error), error
        assert f"{DEVICE} holds an ext4 file system whose superblock is damaged" in error
        assert f"'e2fsck -b {backup} {DEVICE}'" in error
        quit_qemu(vm)
        assert raw_sha256(disk) == before, "the OS wrote to a disk with a damaged superblock"


ERRORS_FLAG = "ssv state 2"  # what the kernel records when it finds an inconsistency


class TestPreen:
    def test_file_system_marked_with_errors_is_checked_and_boots(self, machine_factory, tmp_path):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (errors
        e2fsck -p fixed; power cut and fsck): a file system the kernel marked as
        having errors gets a full check by e2fsck -p before the mount, which the
        journal alone would not give it; the boot goes on with a warning."""
        disk = ext4_qcow2(tmp_path / "data.qcow2", SMALL_DISK)
        debugfs_edit(disk, ERRORS_FLAG)
        vm = machine_factory(data_disk=disk)
        vm.start()
        vm.wait_for_boot()
        text = vm.console_text()
        assert re.search(r"e2fsck: \S+ contains a file system with errors, check forced", text)
        warning = (
            rf"{guest.WARN_MARKER} e2fsck repaired the file system on {DEVICE} \(exit status 1"
        )
        assert re.search(warning, text), text
        # the kernel would warn "mounting fs with errors" had e2fsck not cleared the mark
        assert "mounting fs with errors" not in vm.succeed("dmesg")

    @pytest.mark.console_shell
    def test_errors_preen_cannot_fix_stop_the_boot_until_repaired(self, machine_factory, tmp_path):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (errors
        e2fsck -p cannot fix) and "Failure Handling": a directory whose inode is gone
        is more than preen may repair unattended: one error line names the device,
        the exit status and the repair, then the emergency shell; that repair (e2fsck,
        answering yes) and `exit` boot to stage 90."""
        disk = ext4_qcow2(tmp_path / "data.qcow2", SMALL_DISK, {"lost-dir/file": "x\n"})
        debugfs_edit(disk, "clri /lost-dir", ERRORS_FLAG)
        vm = machine_factory(data_disk=disk, allow_failures=EXPECTS_ERROR)
        boot_to_emergency_shell(vm)
        error = the_error(vm)
        assert f"e2fsck cannot repair the file system on {DEVICE} unattended" in error, error
        assert "(exit status 4," in error and f"'e2fsck {DEVICE}'" in error
        assert "UNEXPECTED INCONSISTENCY" in vm.console_text(), "e2fsck's output is shown"
        # -y: the test shell has no terminal to answer e2fsck's questions on
        status, output = vm.execute(f"e2fsck -y {DEVICE}")
        assert status == 1, f"e2fsck should have repaired the file system: {status} {output}"
        retry = vm.console_cursor()
        vm.send_console("exit\r")
        vm.wait_for_console(
            guest.BOOT_MARKER, timeout=vm.config.boot_timeout, since=retry, allow_failures=()
        )
        assert re.search(rf"Mounted {DEVICE} on ", vm.console_text(retry))


@pytest.mark.qemu_only("a write-protected data disk")
class TestReadOnlyDisk:
    def test_read_only_disk_stops_with_one_error_and_is_unchanged(self, machine_factory, tmp_path):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (read-only): a
        write-protected data disk stops the boot with one error line naming the
        device and kubesolo.nopersist, then the emergency shell; its bytes are
        unchanged."""
        disk = ext4_qcow2(tmp_path / "data.qcow2", SMALL_DISK)
        before = raw_sha256(disk)
        vm = machine_factory(data_disk=disk, data_disk_readonly=True, allow_failures=EXPECTS_ERROR)
        boot_to_emergency_shell(vm)
        assert vm.succeed(f"blockdev --getro {DEVICE}").strip() == "1", "premise: read-only"
        error = the_error(vm)
        assert f"data device {DEVICE} is read-only" in error, error
        assert "kubesolo.nopersist" in error
        quit_qemu(vm)
        assert raw_sha256(disk) == before


@pytest.mark.long
@pytest.mark.qemu_only("hot-plugs the data disk through QMP")
class TestLateDisk:
    HOTPLUG_AFTER = 25.0  # seconds after the waiting line: inside the 30 s wait

    def test_disk_appearing_after_25s_is_mounted(self, machine_factory):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (late): a data
        disk hot-plugged 25 s after stage 20 starts waiting for it is found by its
        label and mounted, and the boot completes."""
        vm = machine_factory(data_disk=False)
        start = vm.console_cursor()
        vm.start()
        vm.wait_for_console(WAITING, timeout=vm.config.boot_timeout)
        waiting = first_arrival(vm, WAITING, start)
        time.sleep(max(0.0, waiting + self.HOTPLUG_AFTER - time.monotonic()))
        plugged = time.monotonic()
        vm.hotplug_data_disk()
        mounted = rf"Mounted /dev/vd\w+ on {guest.DATA_MNT}"
        vm.wait_for_console(mounted, timeout=60)
        vm.wait_for_boot()
        assert plugged - waiting >= self.HOTPLUG_AFTER, "premise: the disk came late"
        print(
            f"late disk: plugged {plugged - waiting:.1f}s after the waiting line, mounted "
            f"{first_arrival(vm, mounted, start) - waiting:.1f}s after it"
        )

    def test_disk_that_never_appears_fails_after_30s(self, machine_factory):
        """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (missing): with
        no data disk, the missing-disk error comes no earlier than 30 s after the
        waiting line (and well within a TCG-sized bound), then the emergency shell."""
        vm = machine_factory(data_disk=False, allow_failures=EXPECTS_ERROR)
        start = vm.console_cursor()
        boot_to_emergency_shell(vm)
        error = the_error(vm)
        assert re.search(MISSING, error), error
        assert "attach a disk labelled KSOLODATA or boot with kubesolo.nopersist" in error
        assert "superblock" not in error, "no disk at all: nothing is damaged"
        waited = first_arrival(vm, MISSING, start) - first_arrival(vm, WAITING, start)
        print(f"missing disk: error {waited:.1f}s after the waiting line")
        assert 30 <= waited <= 120, waited
