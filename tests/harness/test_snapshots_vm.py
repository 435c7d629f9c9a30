"""Booted machines saved and restored (docs/architecture.md "Snapshots")."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
import time
import urllib.request

import pytest
from child_pytest import child_pytest

from harness import guest
from harness.errors import HarnessError
from harness.vm.snapshot import Snapshot

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only]

PROOF = f"{guest.KUBESOLO_PATH}/snapshot-proof"
RAM_PROOF = "/run/snapshot-proof"  # a tmpfs: only in the guest's RAM
STREAM_LIMIT = 16 << 20  # bytes: QEMU's device state, far less than the RAM
SNAPSHOT_AGE = 12  # seconds between the save and the restore: the clock must catch up


def file_digest(path):
    with path.open("rb") as data:
        return hashlib.file_digest(data, "sha256").hexdigest()


@pytest.mark.long
def test_restore_is_the_saved_machine_on_its_own_disk_with_the_clock_set(machine_factory, tmp_path):
    """docs/architecture.md "Snapshots": a failed save leaves the machine
    running and no snapshot; a restore is the saved guest (same
    boot id, same files on disk and in RAM, the boot's console), writes to an
    overlay and a copy of the RAM of its own,
    answers on the test shell and a forwarded port, has its clock set to now,
    cannot itself be saved, and boots cold from its disk when rebooted."""
    source = machine_factory(name="source")
    source.start()
    source.wait_for_boot()
    source.succeed(f"echo before > {PROOF} && sync && echo before > {RAM_PROOF}")
    boot_id = source.succeed("cat /proc/sys/kernel/random/boot_id")
    broken = tmp_path / "broken"
    (broken / "state.part").mkdir(parents=True)  # the stream cannot be written there
    with pytest.raises(HarnessError, match="snapshot migration failed"):
        source.save_snapshot(broken)
    assert not Snapshot(broken).complete
    assert source.succeed("echo runs on") == "runs on\n"  # a failed save leaves it running
    snap = source.save_snapshot(tmp_path / "snap")
    assert snap.state.stat().st_size < STREAM_LIMIT  # the RAM is a file beside it
    ram_digest = file_digest(snap.ram)
    # the source runs on, disk and RAM
    source.succeed(f"echo after > {PROOF}-source && sync && echo after > {RAM_PROOF}-source")
    time.sleep(SNAPSHOT_AGE)

    restored = machine_factory(name="restored", forwards=(8080,))
    restored.restore(snap)
    assert restored.restored_in is not None
    restored.wait_for_boot()  # the saved boot, read from the snapshot's console
    assert re.search(guest.BOOT_MARKER, restored.console_text())
    assert restored.boot_timelines() == []  # that boot was the source's, counted there
    assert restored.succeed("cat /proc/sys/kernel/random/boot_id") == boot_id
    assert restored.succeed(f"cat {PROOF}") == "before\n"
    restored.fail(f"test -e {PROOF}-source")
    restored.fail(f"test -e {RAM_PROOF}-source")
    assert restored.succeed(f"cat {RAM_PROOF}") == "before\n"
    guest_now = int(restored.succeed("date -u +%s"))
    assert abs(guest_now - time.time()) < SNAPSHOT_AGE / 2

    restored.succeed("mkdir -p /tmp/www && echo restored-page > /tmp/www/index.html")
    restored.succeed("httpd -p 8080 -h /tmp/www")
    url = f"http://127.0.0.1:{restored.host_port(8080)}/"
    with urllib.request.urlopen(url, timeout=30) as page:
        assert page.read() == b"restored-page\n"
    restored.succeed(f"echo mine > {PROOF}-restored && sync && echo mine > {RAM_PROOF}-restored")
    with pytest.raises(HarnessError, match="a restored machine cannot be saved"):
        restored.save_snapshot(tmp_path / "again")

    second = machine_factory(name="second")
    second.restore(snap)
    second.fail(f"test -e {PROOF}-restored")  # each restore has its own overlay
    second.fail(f"test -e {RAM_PROOF}-restored")  # and its own copy of the RAM
    assert file_digest(snap.ram) == ram_digest  # which no restore wrote to
    second.reboot()
    second.wait_for_boot()
    assert second.succeed(f"cat {PROOF}") == "before\n"
    assert second.succeed("cat /proc/sys/kernel/random/boot_id") != boot_id
    assert len(second.boot_timelines()) == 1
    restored.power_off()
    assert restored.boot_timelines() == []  # nor after its QEMU is gone
    assert restored.plan().ram_file is None  # powered on again: a memfd of its own


SHARED_SUITE = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("n", range(3))
    def test_default_machine(machine, n):
        assert machine.succeed("echo up") == "up\\n"
    """
)


@pytest.mark.parametrize(
    ("args", "boots", "restores"),
    [(("-n", "2"), 1, 2), (("-n", "2", "--no-snapshots"), 3, 0)],
)
def test_a_run_boots_the_default_machine_once_and_restores_it(
    kubesolo_image, tmp_path, args, boots, restores
):
    """docs/architecture.md "Snapshots": three tests that ask for the default
    machine in one run of two xdist workers get one boot and two restores,
    whichever worker runs them; --no-snapshots boots all three; the run's
    snapshots are gone when it ends."""
    suite = tmp_path / "test_shared.py"
    suite.write_text(SHARED_SUITE)
    artifacts = tmp_path / "artifacts"
    child = child_pytest(kubesolo_image.path, artifacts, suite, *args)
    assert child.wait(timeout=600) == 0
    report = json.loads((artifacts / "boots.json").read_text())
    assert (report["boots"], report["restores"]) == (boots, restores)
    assert not list((artifacts / "snapshots").glob("*/*"))
