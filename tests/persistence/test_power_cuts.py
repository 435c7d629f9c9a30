"""Power cuts while the node writes (docs/boot-flow.md "Stage 20 — Persistent Mount",
"Disk faults": power cut and fsck). One machine, one data disk, N times: boot, start
an appender under each persistent path (its log fsynced and announced every second)
and a writer of numbered files (each fsynced and only then announced on the
console), pull the plug (SIGKILL of QEMU) at a random moment, boot again on the same
disk. Every boot must reach stage 90 with no error, every file announced before a cut
must read back with its sha256 and every announced append must be in its log; at the
end the unmounted file system must pass a full `e2fsck -fn`.

QEMU's default cache mode (writeback) honours the guest's flushes, and the host's page
cache outlives QEMU, so a SIGKILL loses exactly what the guest had not flushed: a
power cut as the guest sees it. `--power-cuts N` sets N (2 in the test command, 30
nightly)."""

from __future__ import annotations

import random
import re
import statistics
import time

import pytest
from console_times import line_arrivals
from persistence_state import PERSISTENT_PATHS
from power_cut_writer import (
    NumberedFile,
    append_log_command,
    appends_command,
    sha256_command,
    synced_appends,
    synced_files,
    writers_script,
)

from harness import guest
from harness.vm.protocols import ShellAccess, Target

pytestmark = [pytest.mark.persistence, pytest.mark.slow]

WRITE_SECONDS = (1.0, 6.0)  # how long the writers run before the cut: uniform
FSCK_START = r"\[INFO\] Checking the file system on "
FSCK_DONE = r"\[INFO\] e2fsck: "  # e2fsck's output, printed once it has exited
JOURNAL_REPLAY = r"e2fsck: \S+: recovering journal"
REPAIRED = rf"{guest.WARN_MARKER} e2fsck repaired"


def lost_files(vm: ShellAccess, synced: list[NumberedFile]) -> list[str]:
    """The synced files that are missing or whose content differs."""
    found = {}
    for line in vm.succeed(sha256_command(), timeout=300).splitlines():
        digest, path = line.split(maxsplit=1)
        found[path] = digest
    return [
        f"{f.path} ({'changed' if f.path in found else 'missing'})"
        for f in synced
        if found.get(f.path) != f.sha256
    ]


def lost_appends(vm: ShellAccess, synced: dict[tuple[int, str], int]) -> list[str]:
    """The append logs that hold fewer whole lines of a cut than were fsynced."""
    held = {}
    for line in vm.succeed(appends_command(), timeout=300).splitlines():
        path, cut, count = line.split()
        held[int(cut), path] = int(count)
    return [
        f"{path}: {held.get((cut, path), 0)} of cut {cut}'s {count} synced appends"
        for (cut, path), count in synced.items()
        if held.get((cut, path), 0) < count
    ]


def fsck_seconds(vm: Target, since: int) -> float:
    """How long stage 20's e2fsck -p took in the boot after `since` (console times)."""
    started = line_arrivals(vm, FSCK_START, since)
    done = line_arrivals(vm, FSCK_DONE, since)
    assert started and done, "stage 20 did not check the file system"
    return done[0][0] - started[0][0]


def unmount_data_partition(vm: ShellAccess) -> str:
    """Unmount the bind mounts and the data partition (nothing writes in the last
    boot: no writers were started); the device it was on."""
    device = vm.succeed(f"awk '$2 == \"{guest.DATA_MNT}\" {{ print $1 }}' /proc/mounts").strip()
    mounts = " ".join(target for _, target in guest.BIND_MOUNTS)
    vm.succeed(f"sync; for m in {mounts}; do umount $m || exit 1; done; umount {guest.DATA_MNT}")
    return device


@pytest.mark.long
def test_synced_files_survive_power_cuts(machine_factory, data_disk_overlay, pytestconfig):
    """docs/boot-flow.md "Stage 20 — Persistent Mount", "Disk faults" (power cut and
    fsck): after each of N power cuts during writes the node boots to stage 90 with no
    error, no file whose fsync returned is lost or changed, and the file system is
    consistent at the end (e2fsck -fn)."""
    cuts = pytestconfig.getoption("power_cuts")
    rng = random.Random()
    began = time.monotonic()
    disk = data_disk_overlay("power-cuts")
    vm = machine_factory(name="power-cuts", data_disk=disk)
    synced: list[NumberedFile] = []
    appended: dict[tuple[int, str], int] = {}  # (cut, path) -> appends fsynced
    fsck_times, replays, repairs, delays = [], 0, 0, []
    boot = vm.console_cursor()
    vm.start()
    vm.wait_for_boot()
    fsck_times.append(fsck_seconds(vm, boot))
    for cut in range(1, cuts + 1):
        writing = vm.console_cursor()
        vm.succeed(writers_script(cut))
        delays.append(rng.uniform(*WRITE_SECONDS))
        time.sleep(delays[-1])
        vm.power_off()
        synced += synced_files(vm.console_text(writing), cut)
        appends = synced_appends(vm.console_text(writing), cut)
        appended |= {(cut, path): count for path, count in appends.items()}

        boot = vm.console_cursor()
        vm.start()
        vm.wait_for_boot()  # any [ERROR] on the console fails here
        fsck_times.append(fsck_seconds(vm, boot))
        replays += bool(line_arrivals(vm, JOURNAL_REPLAY, boot))
        repairs += bool(line_arrivals(vm, REPAIRED, boot))
        lost = lost_files(vm, synced)
        assert not lost, f"after cut {cut}/{cuts}, synced files were lost: {lost[:10]}"
        lost = lost_appends(vm, appended)
        assert not lost, f"after cut {cut}/{cuts}, synced appends were lost: {lost[:10]}"

    append_logs = [line.split() for line in vm.succeed(append_log_command()).splitlines()]
    device = unmount_data_partition(vm)
    status, output = vm.execute(f"e2fsck -fn {device}", timeout=600)
    assert synced and appended, "premise: files and appends were synced before the cuts"
    assert len(append_logs) == len(PERSISTENT_PATHS), f"premise: appenders ran: {append_logs}"
    print(
        f"power cuts: {cuts} cuts, {cuts} boots recovered to stage 90, "
        f"{len(synced)} synced files checked, 0 lost; "
        f"{sum(appended.values())} synced appends in {len(appended)} logs checked, 0 lost; "
        f"writes ran {min(delays):.1f}-{max(delays):.1f}s before each cut; "
        f"e2fsck -p per boot: median {statistics.median(fsck_times):.2f}s, "
        f"max {max(fsck_times):.2f}s over {len(fsck_times)} boots; "
        f"journal replayed by e2fsck after {replays} cuts, repairs after {repairs}; "
        f"append logs (path bytes NULs malformed-lines): {append_logs}; "
        f"final e2fsck -fn status {status}; wall {time.monotonic() - began:.0f}s"
    )
    assert status == 0, f"e2fsck -fn found errors after {cuts} power cuts:\n{output}"
    assert not re.search(guest.ERROR_MARKER, vm.console_text(0))
