"""A board made of QEMU, wired exactly like hardware and reached only through
labgrid (fixtures/labgrid/qemu-board.yaml):

- its serial console (ttyS0) and the test-shell line (ttyS1) are Unix
  sockets in DIR/serial, a directory only its user may enter
  (harness.lab.unix_serial): no other local user can type at them, take
  them first or serve a fake board there (a TCP port on 127.0.0.1 is open to
  every local user); with one UART the test shell shares the console's line
  (fixtures/labgrid/qemu-board-1uart.yaml);
- its power is this command, run by labgrid's ExternalPowerDriver:
  `python -m harness.lab.qemu_board on|off --dir DIR ...` starts or kills the
  QEMU process (off is the plug pulled: no guest shutdown);
- it boots from its boot medium, a disk file holding the image (the ISO,
  isohybrid, as a USB stick would hold it, or the disk image), and keeps its
  data on a second medium, a disk file that survives power cycles (none when
  it boots the disk image, whose data partition is on it); labgrid writes
  them before power-on (harness.lab.media);
- its firmware is SeaBIOS, or OVMF (with Secure Boot, Microsoft's keys
  enrolled) whose variables are a file in its state directory, kept across
  power cycles like a board's NVRAM;
- no QMP, no virtio console or shell: nothing the tests use is QEMU's own.
  User networking is restricted (restrict=on).

`on` starts a small supervisor that owns QEMU and kills it when the process
that powered the board on (pytest) dies, so a killed run leaves no QEMU."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.private import foreign, private_dir
from harness.process import child_dies_with_parent, pid_alive
from harness.vm.firmware import FIRMWARES, firmware_args, firmware_files, machine_options
from harness.vm.qemu import base_args

LISTEN_TIMEOUT = 30.0  # seconds for QEMU to open its serial sockets
UART_NAMES = ("console", "testshell")  # ttyS0, ttyS1: DIR/serial/<name>.sock


@dataclass(frozen=True)
class BoardWiring:
    """Everything the QEMU board's command line depends on."""

    boot_medium: Path
    data_medium: Path | None  # None: the boot medium holds the data partition
    serial_dir: Path  # where the UARTs' sockets are (a private directory)
    uarts: int = 2  # 1: the test shell shares the console's line
    mac: str = "52:54:00:12:34:56"
    memory_mb: int = 512
    accel: str = "tcg"
    boot_bus: str = "usb"  # usb: a USB stick (xHCI); sata: a disk on the AHCI controller
    firmware: str = "bios"  # harness.vm.firmware.FIRMWARES
    efi_vars: Path | None = None  # UEFI: the board's variables (its NVRAM), a file

    @property
    def sockets(self) -> tuple[Path, ...]:
        """The UARTs' Unix sockets, ttyS0 first."""
        return tuple(self.serial_dir / f"{name}.sock" for name in UART_NAMES[: self.uarts])


def disk_format(path: Path) -> str:
    return "qcow2" if path.suffix == ".qcow2" else "raw"


def board_command(w: BoardWiring, qemu: str = "qemu-system-x86_64") -> list[str]:
    """The QEMU command line of the board (pure but for finding the firmware's
    files; unit-tested)."""
    firmware = FIRMWARES[w.firmware]
    files = firmware_files(firmware)
    uefi = firmware_args(firmware, files[0], w.efi_vars) if files and w.efi_vars else []
    data = (
        [
            "-drive",
            f"file={w.data_medium},format={disk_format(w.data_medium)},if=none,id=data0",
            "-device",
            "virtio-blk-pci,drive=data0,id=datadisk",
        ]
        if w.data_medium
        else []
    )
    return [
        *base_args(
            qemu, "q35" + machine_options(firmware), w.accel, w.memory_mb, machine_extra=uefi
        ),
        # ttyS0: the console; ttyS1: the test shell's line (kubesolo.testshell=ttyS1)
        *(arg for path in w.sockets for arg in ("-serial", f"unix:{path},server=on,wait=off")),
        "-device",
        "virtio-rng-pci",
        # the boot medium, holding the hybrid ISO's bytes or the disk image
        "-drive",
        f"file={w.boot_medium},format={disk_format(w.boot_medium)},if=none,id=bootstick",
        *BOOT_BUSES[w.boot_bus],
        *data,  # the data medium: the board's own disk
        "-netdev",
        "user,id=net0,restrict=on",
        "-device",
        f"virtio-net-pci,netdev=net0,mac={w.mac}",
    ]


# How the boot medium is attached: a USB stick (as the example x86 board boots
# its SD card through a USB reader), or a SATA disk on the AHCI controller.
BOOT_BUSES: dict[str, tuple[str, ...]] = {
    "usb": ("-device", "qemu-xhci,id=xhci",
            "-device", "usb-storage,bus=xhci.0,drive=bootstick,bootindex=0"),
    "sata": ("-device", "ide-hd,bus=ide.0,drive=bootstick,bootindex=0"),
}  # fmt: skip


def listening(path: Path) -> bool:
    """Has QEMU made the UART's socket? (it listens once it has)"""
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def power_on(state: Path, wiring: BoardWiring, owner: int) -> int:
    supervisor = state / "supervisor.pid"
    pid = _read_pid(supervisor)
    if pid and pid_alive(pid):
        return 0  # already on: a PDU outlet switched on twice stays on
    for medium in (wiring.boot_medium, wiring.data_medium):
        if medium and not medium.is_file():
            return _fail(f"no medium {medium}: write the image first (the strategy's 'flashed')")
    state.mkdir(parents=True, exist_ok=True)
    private_dir(wiring.serial_dir)
    for path in wiring.sockets:  # a killed board's
        path.unlink(missing_ok=True)
    files = firmware_files(FIRMWARES[wiring.firmware])
    if files and wiring.efi_vars and not wiring.efi_vars.exists():  # a new board's NVRAM
        shutil.copyfile(files[1], wiring.efi_vars)
    args = [sys.executable, "-m", "harness.lab.qemu_board", "supervise", "--dir", str(state)]
    args += [*_wiring_args(wiring), "--owner-pid", str(owner)]
    log = (state / "qemu-stderr.log").open("wb")
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
    )
    supervisor.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + LISTEN_TIMEOUT
    while not all(listening(path) for path in wiring.sockets):
        if proc.poll() is not None:
            tail = (state / "qemu-stderr.log").read_text(errors="replace").strip()[-400:]
            return _fail(f"QEMU board did not start: {tail}")
        if time.monotonic() > deadline:
            power_off(state)
            return _fail(f"QEMU board opened no serial socket within {LISTEN_TIMEOUT:.0f}s")
        time.sleep(0.02)
    return 0


def supervise(state: Path, wiring: BoardWiring, owner: int) -> int:
    """Run QEMU until it exits, the board is switched off, or `owner` dies."""
    cmd = board_command(wiring)
    (state / "qemu-cmdline.txt").write_text(" ".join(cmd) + "\n")
    qemu = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=child_dies_with_parent)
    (state / "qemu.pid").write_text(f"{qemu.pid}\n")
    while qemu.poll() is None:
        if not pid_alive(owner):
            qemu.kill()
            break
        time.sleep(0.5)
    qemu.wait()
    return 0


def power_off(state: Path) -> int:
    """Pull the plug: kill QEMU and its supervisor at once (idempotent)."""
    for name in ("qemu.pid", "supervisor.pid"):
        pid = _read_pid(state / name)
        if pid and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while pid_alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.02)
        (state / name).unlink(missing_ok=True)
    return 0


def _fail(message: str) -> int:
    print(f"qemu-board: {message}", file=sys.stderr)
    return 1


def _wiring_args(w: BoardWiring) -> list[str]:
    data = ["--data-medium", str(w.data_medium)] if w.data_medium else []
    return [
        "--boot-medium", str(w.boot_medium), *data, "--firmware", w.firmware,
        "--uarts", str(w.uarts),
        "--mac", w.mac, "--memory", str(w.memory_mb), "--accel", w.accel,
        "--boot-bus", w.boot_bus,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.lab.qemu_board")
    parser.add_argument("action", choices=("on", "off", "supervise"))
    parser.add_argument("--dir", required=True, type=Path, help="the board's state directory")
    parser.add_argument("--boot-medium", type=Path)
    parser.add_argument("--data-medium", type=Path)
    parser.add_argument("--uarts", type=int, default=2, choices=(1, 2))
    parser.add_argument("--mac", default=BoardWiring.mac)
    parser.add_argument("--memory", type=int, default=BoardWiring.memory_mb)
    parser.add_argument("--accel", default=BoardWiring.accel, choices=("tcg", "kvm"))
    parser.add_argument("--boot-bus", default=BoardWiring.boot_bus, choices=sorted(BOOT_BUSES))
    parser.add_argument("--firmware", default=BoardWiring.firmware, choices=list(FIRMWARES))
    parser.add_argument("--owner-pid", type=int, default=os.getppid())
    a = parser.parse_args(argv)
    state = a.dir.resolve()
    problem = foreign(state)  # its pid files say what `off` kills, as root
    if problem:
        return _fail(f"{state} {problem}: remove it and use a directory of your own")
    if a.action == "off":
        return power_off(state)
    if not a.boot_medium:
        parser.error("on needs --boot-medium")
    data = a.data_medium.resolve() if a.data_medium else None
    efi_vars = state / "efi-vars.fd" if FIRMWARES[a.firmware].uefi else None
    wiring = BoardWiring(
        a.boot_medium.resolve(), data, state / "serial", a.uarts,
        a.mac, a.memory, a.accel, a.boot_bus, a.firmware, efi_vars,
    )  # fmt: skip
    try:
        if a.action == "on":
            return power_on(state, wiring, a.owner_pid)
        return supervise(state, wiring, a.owner_pid)
    except UserError as err:  # a missing firmware file
        return _fail(str(err))


if __name__ == "__main__":
    sys.exit(main())
