"""One KubeSolo OS virtual machine with the API of the NixOS test driver:
start, console waits, the test shell, power, ports and disks. Every public
action is a logged step (harness.log): start, end, duration and outcome."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from qemu.qmp.legacy import QEMUMonitorProtocol

from harness import guest
from harness.artefact import Image, cache_root
from harness.disk import create_overlay
from harness.errors import HarnessError, HarnessTimeout, MachineNotRunning, UserError
from harness.log import logger
from harness.process import child_in_own_group_dies_with_parent
from harness.vm import accel as accel_mod
from harness.vm import firmware as fw
from harness.vm import ports, pvh, qemu
from harness.vm.boots import BootBook
from harness.vm.config import MachineConfig, default_mac, is_disk_boot, kernel_cmdline, validate
from harness.vm.console import Console
from harness.vm.machine_snapshots import MachineSnapshots
from harness.vm.protocols import PortForwarding, Target
from harness.vm.serial_pipes import ConsolePipes
from harness.vm.shell import GuestShell

# A clean poweroff: KubeSolo's stop (60 s), every other process's (10 s), then unmounts.
SHUTDOWN_TIMEOUT = 120.0
QMP_CONNECT_TIMEOUT = 30.0
SOCKET_DIR_PREFIX = "ksh-"  # + "<pid>-": QEMU's sockets (short paths: sun_path is 108 bytes)
SOCKET_DIR_LOCK = "alive"  # flocked by the machine for its life: the leftovers' test
log = logger("vm")


class Machine(MachineSnapshots):
    """A QEMU VM booting a KubeSolo OS image. Use as a context manager."""

    def __init__(
        self,
        image: Image,
        config: MachineConfig | None = None,
        run_dir: Path | None = None,
        qemu_binary: str = "qemu-system-x86_64",
    ) -> None:
        self.image = image
        self.config = config or MachineConfig()
        validate(self.config)
        if shutil.which(qemu_binary) is None:
            raise UserError(
                f"{qemu_binary} not found: install QEMU (apt-get install qemu-system-x86)"
            )
        self.qemu_binary = qemu_binary
        self.run_dir = run_dir or Path(tempfile.mkdtemp(prefix=f"kubesolo-{self.config.name}-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # named after our pid: if we are killed, the next run removes it
        self._sock_dir = Path(tempfile.mkdtemp(prefix=f"{SOCKET_DIR_PREFIX}{os.getpid()}-"))
        self._alive = os.open(self._sock_dir / SOCKET_DIR_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._alive, fcntl.LOCK_EX)
        self.console = Console(self.run_dir / "console.log")
        self.activity = 0  # public actions so far: tells which machines a test used
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp: QEMUMonitorProtocol | None = None
        self._qmp_lock = threading.Lock()  # a shared machine's relay asks from its threads
        self._forward_lock = threading.Lock()  # one forward per guest port, whoever asks
        self._shell: GuestShell | None = None
        self._forwards: dict[int, ports.PortReservation] = {}
        self.boots = BootBook()
        self._expect_cursor = 0
        self.verdict: accel_mod.Verdict | None = None
        self._incoming: Path | None = None  # restoring: the snapshot's migration stream
        self._ram_file: Path | None = None  # restoring: the snapshot's RAM
        self._qemu_ram_file: Path | None = None  # the running QEMU's RAM, if a snapshot's
        self._disk_override: Path | None = None  # restoring: an overlay on the snapshot's disk
        self.restored_in: float | None = None  # seconds the restore took, if restored
        self.restored_at: int | None = None  # when, on the host's clock: the guest's is set to it
        self._lease: int | None = None  # on a cached image: pruning passes over it
        for guest_port in self.config.forwards:
            self.forward_port(guest_port)

    # ---- life cycle ------------------------------------------------------------
    def __enter__(self) -> Machine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_up(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def socket_dir(self) -> Path:
        """Where this machine's Unix sockets live: a short path, removed by close()."""
        return self._sock_dir

    def _data_disk(self) -> Path | None:
        if self._disk_override:
            return self._disk_override
        disk = self.config.data_disk
        if disk is False:
            return None
        if disk is True:
            overlay = self.run_dir / "data-overlay.qcow2"
            if not overlay.exists() and is_disk_boot(self.config):
                create_overlay(self.image.disk_image, overlay, backing_format="raw")
            elif not overlay.exists():
                create_overlay(self.image.data_disk, overlay)
            return overlay
        return Path(disk).resolve()

    def plan(self) -> qemu.QemuPlan:
        """The QEMU plan of this machine (the accelerator must be resolved)."""
        assert self.verdict is not None
        c = self.config
        disk = self._data_disk()
        firmware = fw.firmware_files(fw.FIRMWARES[c.firmware])
        return qemu.QemuPlan(
            accel=self.verdict.accel,
            memory_mb=c.memory_mb,
            cpus=c.cpus,
            icount_shift=c.icount_shift,
            boot=c.boot,
            kernel=pvh.boot_kernel(self.image.kernel) if c.boot == "kernel" else None,
            initramfs=c.initramfs or self.image.initramfs,
            cmdline=kernel_cmdline(self.image, c),
            iso=self.image.iso,
            disk=disk if is_disk_boot(c) else None,
            firmware=c.firmware,
            firmware_code=firmware[0] if firmware else None,
            firmware_vars=self._firmware_vars(firmware[1]) if firmware else None,
            data_disk=None if is_disk_boot(c) else disk,
            data_disk_readonly=c.data_disk_readonly,
            restricted=c.network == "restricted",
            macs=c.macs or tuple(default_mac(i) for i in range(c.nics)),
            forwards=tuple(qemu.Forward(r.port, g) for g, r in self._forwards.items()),
            shares=tuple(sorted((t, Path(p).resolve()) for t, p in c.shares.items())),
            qmp_socket=self._sock_dir / "qmp.sock",
            shell_socket=self._sock_dir / "shell.sock",
            incoming=self._incoming,
            ram_file=self._ram_file,
        )

    def _firmware_vars(self, template: Path) -> Path:
        """This machine's UEFI variables: a copy of the template, made once, so
        that what the firmware stores survives the machine's reboots."""
        copy = self.run_dir / "efi-vars.fd"
        if not copy.exists():
            shutil.copyfile(template, copy)
        return copy

    def start(self) -> None:
        """Start QEMU; returns once the console is being captured."""
        if self.is_up:
            return
        with self._step("start"):
            if self._lease is None and self.image.path.parent == cache_root() / "images":
                self._lease = self.image.lease()
            self.verdict = accel_mod.resolve(self.config.accel, self.qemu_binary, self.image.kernel)
            for attempt in range(3):
                plan = self.plan()
                self._qemu_ram_file = plan.ram_file
                cmd = qemu.command_line(plan, self.qemu_binary)
                (self.run_dir / "qemu-cmdline.txt").write_text(shlex.join(cmd) + "\n")
                log.debug("[%s] QEMU (%s): %s", self.config.name, self.verdict.accel, cmd)
                pipes = ConsolePipes()
                with (
                    pipes.closed_on_error(),
                    (self.run_dir / "qemu-stderr.log").open("wb") as stderr,
                ):
                    self._proc = subprocess.Popen(
                        cmd,
                        stdin=pipes.stdin,
                        stdout=pipes.stdout,
                        stderr=stderr,
                        preexec_fn=child_in_own_group_dies_with_parent,
                    )
                pipes.started()
                try:
                    self._connect(pipes)
                    return
                except _LostPortRace:
                    self._kill()
                    self._reforward()
                    log.info("[%s] host port taken, retrying (%d)", self.config.name, attempt + 1)
            raise HarnessError("could not start QEMU: host ports kept being taken")

    def _socket_connect(self, path: Path, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                err = (self.run_dir / "qemu-stderr.log").read_text(errors="replace")
                if "Could not set up host forwarding rule" in err:
                    raise _LostPortRace(err)
                raise UserError(f"QEMU exited at start: {err.strip()[-400:]}")
            with contextlib.suppress(OSError):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(path))
                    return s
                except OSError:
                    s.close()
                    raise
            if time.monotonic() > deadline:
                raise MachineNotRunning(f"QEMU did not open {path.name} within {timeout:.0f}s")
            time.sleep(0.02)

    def _connect(self, console: ConsolePipes) -> None:
        self.boots.power_on(self.console)
        self.console.attach(console)  # QEMU held it from its start: no byte is missed
        qmp_path = self._sock_dir / "qmp.sock"
        self._socket_connect(qmp_path, QMP_CONNECT_TIMEOUT).close()
        self._qmp = QEMUMonitorProtocol(str(qmp_path))
        self._qmp.connect()
        self._shell = GuestShell(self._socket_connect(self._sock_dir / "shell.sock", 30))
        self._choose_label()

    def _choose_label(self) -> None:
        """A medium boot with a label: type it at isolinux's prompt, or walk
        GRUB's menu (in the order of every menu: the manifest's) to it."""
        label, loader = self.config.label, fw.bootloader(self.config.firmware, self.config.boot)
        if not label or loader == "qemu":
            return
        if loader == "isolinux":
            if self.image.manifest.get("menu_locked"):
                raise UserError(
                    f"label {label!r}: a release ISO under BIOS boots its default label (its "
                    "isolinux has no prompt); choose a label in GRUB: firmware uefi, or a disk boot"
                )
            self.expect_console([guest.ISOLINUX_PROMPT], timeout=60)
            self.send_console(label + "\r")
            return
        self.expect_console([guest.GRUB_MENU], timeout=120)
        place = list(self.image.manifest["labels"]).index(label)
        self.send_console(guest.MENU_DOWN * place + "\r")

    def _reforward(self) -> None:
        for guest_port, reservation in list(self._forwards.items()):
            reservation.release()
            self._forwards[guest_port] = ports.reserve_port()

    def _kill(self) -> None:
        if self._qmp:
            with contextlib.suppress(Exception):
                self._qmp.close()
            self._qmp = None
        if self._proc and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=10)
        if self._shell:
            self._shell.close()
            self._shell = None
        self.console.close()
        self.console = self.console.reopened()

    def close(self) -> None:
        """Kill QEMU and free its ports; the run directory stays."""
        self._kill()
        for reservation in self._forwards.values():
            reservation.release()
        self._forwards.clear()
        shutil.rmtree(self._sock_dir, ignore_errors=True)
        if self._alive >= 0:
            os.close(self._alive)
            self._alive = -1
        if self._lease is not None:
            os.close(self._lease)
            self._lease = None

    # ---- power --------------------------------------------------------------
    def reboot(self) -> None:
        """A clean reboot from inside the guest: PID 1 stops KubeSolo and every
        process, unmounts and syncs (docs/boot-flow.md "Supervision")."""
        with self._step("reboot"):
            shell = self._shell_ready(30)
            self.boots.next_boot(self.console)
            shell.send_detached(guest.REBOOT_COMMAND)
            self._choose_label()

    def hard_reset(self) -> None:
        """QMP system_reset: the reset button, no sync."""
        with self._step("hard reset"):
            self.boots.next_boot(self.console)
            self.qmp("system_reset")
            self._choose_label()

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT, button: bool = False) -> None:
        """A clean poweroff from inside the guest, as `reboot` is; back once QEMU has
        exited (docs/boot-flow.md "Supervision"). `button`: press the power button
        (ACPI, QMP system_powerdown) instead of typing `poweroff`."""
        with self._step("shutdown"):
            if button:
                self.qmp("system_powerdown")
            else:
                self._shell_ready(30).send_detached(guest.POWEROFF_COMMAND)
            proc = self._proc
            try:
                if proc:
                    proc.wait(timeout)
            except subprocess.TimeoutExpired:
                raise HarnessTimeout(
                    f"[{self.config.name}] still running {timeout:.0f}s after poweroff"
                ) from None
            finally:
                self._kill()

    def power_off(self) -> None:
        """Pull the plug: QEMU stops at once (no guest shutdown)."""
        with self._step("power off"):
            self._kill()

    def qmp(self, command: str, **args: Any) -> Any:
        with self._qmp_lock:
            if not self._qmp:
                raise MachineNotRunning(f"machine {self.config.name} is not running")
            return self._qmp.cmd(command, **args) if args else self._qmp.cmd(command)

    # ---- ports and disks --------------------------------------------------------
    def forward_port(self, guest_port: int) -> int:
        """A 127.0.0.1 port forwarded to `guest_port` (before or after start)."""
        with self._forward_lock:
            return self._forward(guest_port)

    def _forward(self, guest_port: int) -> int:
        if guest_port in self._forwards:
            return self._forwards[guest_port].port
        with self._step(f"forward guest port {guest_port}"):
            for _ in range(20):
                reservation = ports.reserve_port()
                if not self.is_up:
                    self._forwards[guest_port] = reservation
                    return reservation.port
                rule = f"tcp:127.0.0.1:{reservation.port}-:{guest_port}"
                reply = self.qmp(
                    "human-monitor-command", **{"command-line": f"hostfwd_add net0 {rule}"}
                )
                if not reply:
                    self._forwards[guest_port] = reservation
                    return reservation.port
                reservation.release()
            raise HarnessError(f"could not forward guest port {guest_port}")

    def host_port(self, guest_port: int) -> int | None:
        """The 127.0.0.1 port forward_port gave `guest_port`, if any."""
        reservation = self._forwards.get(guest_port)
        return reservation.port if reservation else None

    def hotplug_data_disk(self, path: Path | None = None) -> None:
        """Attach a data disk to a running machine (a fresh overlay by default)."""
        with self._step("hot-plug a data disk"):
            if path is None:
                path = create_overlay(self.image.data_disk, self.run_dir / "hotplug-overlay.qcow2")
            self.qmp(
                "blockdev-add",
                **{
                    "node-name": "hotdata",
                    "driver": "qcow2",
                    "file": {"driver": "file", "filename": str(path)},
                },
            )
            self.qmp(
                "device_add", driver="virtio-blk-pci", drive="hotdata", id="hotdisk", bus="hotplug0"
            )


class _LostPortRace(HarnessError):
    pass


def _machine_capabilities(machine: Machine) -> tuple[Target, PortForwarding]:
    return machine, machine  # mypy proves what a Machine offers
