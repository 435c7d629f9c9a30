"""A QEMU machine's snapshots (docs/architecture.md "Snapshots"): save a
booted machine (QEMU's devices, its RAM, its data disk, its console so far)
and start a never-started one from such a save instead of a boot. A part of
`harness.vm.machine.Machine`, kept apart for its size."""

from __future__ import annotations

import contextlib
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.disk import copy_sparse, create_overlay
from harness.errors import HarnessError, UserError
from harness.tools import run_tool
from harness.vm import qemu
from harness.vm.driver import GuestDriver
from harness.vm.snapshot import Snapshot, memfd_of

MIGRATION_BANDWIDTH = 8 << 30  # bytes/s: no limit worth the name (QEMU's default is 128 MiB/s)
# the stream leaves out the shared RAM (qemu.ram_backend): it is copied as a file
SKIP_SHARED_RAM = [{"capability": "x-ignore-shared", "state": True}]
KEEP_SHARED_RAM = [{"capability": "x-ignore-shared", "state": False}]
MIGRATION_TIMEOUT = 120.0


class MachineSnapshots(GuestDriver):
    """Save and restore: the snapshot half of a QEMU Machine."""

    _proc: subprocess.Popen[bytes] | None
    _incoming: Path | None  # restoring: the snapshot's migration stream
    _ram_file: Path | None  # restoring: the snapshot's RAM
    _qemu_ram_file: Path | None  # the running QEMU's RAM, if a snapshot's
    _disk_override: Path | None  # restoring: an overlay on the snapshot's disk
    restored_in: float | None  # seconds the restore took, if restored
    restored_at: int | None  # when, on the host's clock: the guest's is set to it

    if TYPE_CHECKING:  # the Machine's own

        def _data_disk(self) -> Path | None: ...
        def qmp(self, command: str, **args: Any) -> Any: ...

    def save_snapshot(self, directory: Path) -> Snapshot:
        """Save this booted machine: QEMU's devices, its RAM, its data disk and
        its console so far. The machine pauses for the save, then runs on,
        whether the save worked or not; a snapshot is complete only once its
        meta.json exists. The RAM is copied from QEMU's memfd, not streamed."""
        with self._step("save a snapshot"):
            boot_id = self._shell_ready(30).wait_ready(self.boots.shell_boots, 30)
            disk, ram = self._data_disk(), self._guest_ram()
            directory.mkdir(parents=True, exist_ok=True)
            snap = Snapshot(directory)
            partial = snap.state.with_name(snap.state.name + ".part")
            # the stream is whole once `mv` ran: QEMU reports "completed"
            # before `cat` has written its last bytes
            stream = f"cat > {shlex.quote(str(partial))} && mv {shlex.quote(str(partial))} "
            stream += shlex.quote(str(snap.state))
            self.qmp("migrate-set-parameters", **{"max-bandwidth": MIGRATION_BANDWIDTH})
            self.qmp("migrate-set-capabilities", capabilities=SKIP_SHARED_RAM)
            self.qmp("stop")
            try:
                self.qmp("migrate", uri=f"exec:{stream}")
                try:
                    self._wait_migration("completed")
                except HarnessError:
                    self._cancel_migration()
                    raise
                deadline = time.monotonic() + MIGRATION_TIMEOUT
                while not snap.state.exists():
                    if time.monotonic() > deadline:
                        raise HarnessError(f"[{self.config.name}] the snapshot stream never closed")
                    time.sleep(0.02)
                copy_sparse(ram, snap.ram)
                if disk:
                    shutil.copyfile(disk, snap.disk)
                data, arrivals = self.console.snapshot()
                base = self.boots.cursor
                snap.console.write_bytes(data[base:])
                kept = [(end - base, at) for end, at in arrivals if end > base]
                snap.write_meta(boot_id, kept, disk is not None)
            finally:
                self.qmp("cont")
                # a later migration or savevm of this QEMU carries its RAM again
                # (refused only while a migration that would not cancel runs on)
                with contextlib.suppress(Exception):
                    self.qmp("migrate-set-capabilities", capabilities=KEEP_SHARED_RAM)
            return snap

    def restore(self, snap: Snapshot) -> None:
        """Start this (never started) machine from a snapshot instead of a boot:
        its own overlay on the snapshot's disk, the snapshot's console, the test
        shell reconnected, and the guest clock set to now."""
        if self._proc is not None or self.console.cursor() or self.config.boot != "kernel":
            raise UserError("restore: a kernel-boot machine that was never started")
        with self._step("restore a snapshot"):
            started = time.monotonic()
            meta = snap.meta()
            if meta["has_disk"]:
                self._disk_override = create_overlay(snap.disk, self.run_dir / "data-overlay.qcow2")
            self.console.preload(snap.console.read_bytes(), [tuple(a) for a in meta["arrivals"]])
            self.boots.disown(0)  # the snapshot's boot: start() must not keep it
            self._incoming, self._ram_file = snap.state, snap.ram
            try:
                self.start()
            finally:  # a later power-on boots from the disk
                self._incoming = self._ram_file = None
            # the snapshot's boot is not this machine's: never counted as one
            self.boots.disown(0)
            try:
                self.qmp("migrate-set-capabilities", capabilities=SKIP_SHARED_RAM)
                self.qmp("migrate-incoming", uri=f"exec:cat {shlex.quote(str(snap.state))}")
                self._wait_migration("completed")
                self.qmp("cont")
            except Exception as err:  # QEMU exits when a stream cannot be loaded
                stderr = (self.run_dir / "qemu-stderr.log").read_text(errors="replace").strip()
                raise HarnessError(
                    f"[{self.config.name}] restore from {snap.directory} failed: "
                    f"{stderr[-300:] or err}"
                ) from err
            assert self._shell is not None
            self._shell.assume_ready(meta["boot_id"])
            self.restored_at = int(time.time())
            self.succeed(f"date -u -s @{self.restored_at} >/dev/null")
            self.restored_in = round(time.monotonic() - started, 3)

    def detach_disk_from_snapshot(self) -> None:
        """A restored machine's disk, kept past its run: rebased from the
        snapshot's disk (removed at the run's end) onto the image's blank disk."""
        overlay = self._disk_override
        if overlay is None or not overlay.exists() or self.is_up:
            return
        backing = ["-F", "qcow2", "-b", str(self.image.data_disk.resolve())]
        run_tool(["qemu-img", "rebase", "-f", "qcow2", *backing, str(overlay)])

    def _guest_ram(self) -> Path:
        """QEMU's memfd that holds the guest's RAM (qemu.ram_backend)."""
        assert self._proc is not None
        if self._qemu_ram_file is not None:
            name = self.config.name
            raise HarnessError(
                f"[{name}] a restored machine cannot be saved: power it off and on first"
            )
        try:
            return memfd_of(self._proc.pid, qemu.RAM_MEMFD)
        except OSError as err:
            raise HarnessError(f"[{self.config.name}] cannot find the guest's RAM: {err}") from err

    def _wait_migration(self, done: str) -> None:
        """Wait for this QEMU's migration (out or in) to reach `done`."""
        deadline = time.monotonic() + MIGRATION_TIMEOUT
        while (info := self.qmp("query-migrate")).get("status") != done:
            status = info.get("status")
            if status in ("failed", "cancelled") or time.monotonic() > deadline:
                detail = info.get("error-desc", f"not {done} after {MIGRATION_TIMEOUT:.0f}s")
                raise HarnessError(f"[{self.config.name}] snapshot migration {status}: {detail}")
            time.sleep(0.02)

    def _cancel_migration(self) -> None:
        """Stop a migration that is still running, so that `cont` resumes the guest
        (a migration that completes later would leave it paused)."""
        with contextlib.suppress(Exception):
            self.qmp("migrate_cancel")
            deadline = time.monotonic() + 30
            while self.qmp("query-migrate").get("status") not in ("cancelled", "failed", None):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
