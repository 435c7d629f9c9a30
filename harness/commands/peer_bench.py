"""The bench's peer column: labgrid, from PyPI, driving the same image in the
same run (docs/architecture.md "Speed"). Its QEMUDriver boots the image's
kernel and initramfs on our QEMU command line (less what only our harness
adds: the virtio test-shell port, QMP over a socket, hot-plug ports) to the
stage-90 marker; its ShellDriver then talks to the `kubesolo.shell` prompt
over the serial console, as it would to a board's: command round trip and
1 MiB of output."""

from __future__ import annotations

import shlex
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from harness import guest
from harness.artefact import Image
from harness.disk import create_overlay
from harness.errors import HarnessError
from harness.vm import pvh
from harness.vm.config import MachineConfig
from harness.vm.qemu import MACHINES, cpu_model

ROUND_TRIPS = 10
MIB = 1 << 20
LINE = 64  # output bytes per line (newlines not counted)


def output_command(size: int) -> str:
    """`size` bytes of text in lines of LINE characters: bulk output a serial
    console carries as it is (NULs would not be)."""
    return f"head -c {size} /dev/zero | tr '\\0' a | fold -w {LINE}"


SHELL_PARAM = "kubesolo.shell"  # stage 10 opens a root shell on the console

Record = Callable[[str, float], None]

BOOT = "labgrid: QEMUDriver to stage 90"
ROUND_TRIP = "labgrid: ShellDriver round trip (serial)"
MIB_THROUGH_SHELL = "labgrid: 1 MiB through ShellDriver (serial)"


def qemu_extra_args(image: Image, data_disk: Path, accel: str) -> str:
    """Our machine's devices, as labgrid's extra_args (it adds -kernel,
    -append, -machine, -cpu, -m, -display and its own serial and QMP)."""
    args = [
        "-accel", accel, "-nodefaults", "-no-user-config", "-vga", "none",
        "-device", "virtio-rng-pci",
        "-initrd", str(image.initramfs),
        "-drive", f"file={data_disk},if=none,id=data0,format=qcow2",
        "-device", "virtio-blk-pci,drive=data0",
        "-netdev", "user,id=net0,restrict=on",
        "-device", "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
    ]  # fmt: skip
    return shlex.join(args)


def environment_yaml(
    image: Image, kernel: Path, data_disk: Path, accel: str, kernel_args: str
) -> str:
    """labgrid's environment: `kernel` is the one our machines boot (PVH)."""
    cmdline = " ".join(p for p in (image.cmdline(None), kernel_args) if p)
    config = {
        "targets": {
            "main": {
                "drivers": {
                    "QEMUDriver": {
                        "qemu_bin": "qemu",
                        "machine": MACHINES["kernel"],  # the machine ours boot on
                        "cpu": cpu_model(accel),
                        "memory": f"{MachineConfig().memory_mb}M",
                        "kernel": "kernel",
                        "display": "fb-headless",
                        "extra_args": qemu_extra_args(image, data_disk, accel),
                        "boot_args": cmdline,
                    },
                    "ShellDriver": {
                        "prompt": guest.SHELL_PROMPT,
                        "login_prompt": "login: ",
                        "username": "root",
                        "login_timeout": 240,
                    },
                }
            }
        },
        "tools": {"qemu": shutil.which("qemu-system-x86_64") or "qemu-system-x86_64"},
        "images": {"kernel": str(kernel)},
    }
    return yaml.safe_dump(config)


def _target(image: Image, tmp: Path, accel: str, kernel_args: str):  # type: ignore[no-untyped-def]
    from labgrid import Environment  # imported here: the bench runs without labgrid too

    disk = create_overlay(image.data_disk, tmp / f"data-{time.monotonic_ns()}.qcow2")
    env_file = tmp / f"env-{time.monotonic_ns()}.yaml"
    kernel = pvh.boot_kernel(image.kernel)
    env_file.write_text(environment_yaml(image, kernel, disk, accel, kernel_args))
    return Environment(str(env_file)).get_target("main")


def bench_labgrid(image: Image, accel: str, record: Record, output_size: int = MIB) -> None:
    """One run of the peer column: a boot to stage 90, then a shell boot;
    `output_size` is the bulk output's (1 MiB; smaller in its VM test)."""
    from labgrid.driver import QEMUDriver, ShellDriver

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        target = _target(image, tmp, accel, "")
        qemu = target.get_driver(QEMUDriver, activate=False)
        started = time.monotonic()
        target.activate(qemu)
        try:  # its QEMU goes whatever happens
            qemu.on()
            qemu.expect(guest.BOOT_MARKER, timeout=240)
            record(BOOT, time.monotonic() - started)
        finally:
            target.deactivate(qemu)

        target = _target(image, tmp, accel, SHELL_PARAM)
        qemu = target.get_driver(QEMUDriver, activate=False)
        target.activate(qemu)
        try:
            qemu.on()
            shell = target.get_driver(ShellDriver)
            shell.run_check("true")
            trips = []
            for _ in range(ROUND_TRIPS):
                begun = time.monotonic()
                shell.run_check("true")
                trips.append(time.monotonic() - begun)
            record(ROUND_TRIP, statistics.median(trips))
            begun = time.monotonic()
            lines = shell.run_check(output_command(output_size), timeout=600)
            record(MIB_THROUGH_SHELL, time.monotonic() - begun)
        finally:
            target.deactivate(qemu)
        if len(lines) != output_size // LINE or any(line != "a" * LINE for line in lines):
            raise HarnessError(f"labgrid's ShellDriver returned {len(lines)} wrong lines")


def labgrid_available() -> bool:
    try:
        import labgrid  # noqa: F401
    except ImportError:
        return False
    return True
