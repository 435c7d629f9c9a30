"""QEMU command lines, as a pure function of a machine's configuration and
its paths (unit-tested; no process is started here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.boottime.guest_clock import ICOUNT_SLEEP
from harness.errors import UserError
from harness.guest import SHELL_PORT_NAME
from harness.vm.firmware import FIRMWARES, MEDIA, firmware_args, machine_options, medium_args
from harness.vm.serial_pipes import CHARDEV_ARGS

HOTPLUG_PORTS = 2  # PCIe root ports left free for QMP device_add
# A kernel boot's machine: q35 without its SATA controller, whose drivers
# coldplug would load on every boot for a device no test uses
# (docs/architecture.md "Speed"). Every other boot is from a medium
# (harness.vm.firmware.MEDIA), some of which sit on that controller.
MACHINES = {"kernel": "q35,sata=off"}
RAM_ID = "ram0"
HEADLESS = ("-nodefaults", "-no-user-config", "-display", "none", "-vga", "none")
# QEMU names the memfd after the backend type: how a save finds the RAM
RAM_MEMFD = "memfd:memory-backend-memfd"


@dataclass(frozen=True)
class Forward:
    host_port: int
    guest_port: int

    def hostfwd(self) -> str:
        return f"hostfwd=tcp:127.0.0.1:{self.host_port}-:{self.guest_port}"


@dataclass(frozen=True)
class QemuPlan:
    """Everything the command line depends on, resolved."""

    accel: str  # kvm | tcg
    memory_mb: int
    cpus: int
    boot: str  # kernel, or a medium of harness.vm.firmware.MEDIA
    icount_shift: int | None = None  # TCG counting instructions: MachineConfig.icount_shift
    kernel: Path | None = None
    initramfs: Path | None = None
    cmdline: str = ""
    iso: Path | None = None
    disk: Path | None = None  # the boot disk of a disk-image boot (an overlay)
    firmware: str = "bios"  # harness.vm.firmware.FIRMWARES
    firmware_code: Path | None = None  # UEFI: the firmware, read-only
    firmware_vars: Path | None = None  # UEFI: this machine's copy of its variables
    data_disk: Path | None = None
    data_disk_readonly: bool = False  # the guest sees a write-protected disk
    restricted: bool = True
    macs: tuple[str, ...] = ("52:54:00:12:34:56",)
    forwards: tuple[Forward, ...] = ()
    shares: tuple[tuple[str, Path], ...] = ()
    qmp_socket: Path = Path("qmp.sock")
    shell_socket: Path | None = None
    incoming: Path | None = None  # a migration stream to restore (harness.vm.snapshot)
    ram_file: Path | None = None  # restoring: the snapshot's RAM, mapped copy-on-write


def netdev(index: int, restricted: bool, forwards: tuple[Forward, ...]) -> str:
    parts = [f"user,id=net{index}", f"restrict={'on' if restricted else 'off'}"]
    if index == 0:
        parts += [f.hostfwd() for f in forwards]
    return ",".join(parts)


def cpu_model(accel: str) -> str:
    return "host" if accel == "kvm" else "max"


def base_args(
    qemu: str,
    machine: str,
    accel: str,
    memory_mb: int,
    *,
    machine_extra: Sequence[str] = (),
    accel_options: str = "",
    cpus: int | None = None,
) -> list[str]:
    """The start of every QEMU command line the harness runs, a machine's or
    a labgrid QEMU board's: the machine type, the accelerator and its CPU
    model, the memory, and no default devices, user config or display."""
    smp = ["-smp", str(cpus)] if cpus is not None else []
    return [
        qemu,
        "-machine",
        machine,
        *machine_extra,
        "-accel",
        accel + accel_options,
        "-cpu",
        cpu_model(accel),
        "-m",
        str(memory_mb),
        *smp,
        *HEADLESS,
    ]


def ram_backend(plan: QemuPlan) -> str:
    """The guest's RAM: a shared memfd, which a save copies to a file instead
    of streaming it; restoring, that file, mapped copy-on-write so that every
    restore starts from it and none changes it (docs/architecture.md
    "Snapshots")."""
    size = f"id={RAM_ID},size={plan.memory_mb}M"
    if plan.ram_file:
        return f"memory-backend-file,{size},mem-path={plan.ram_file},share=off"
    return f"memory-backend-memfd,{size},share=on"


def command_line(plan: QemuPlan, qemu: str = "qemu-system-x86_64") -> list[str]:
    multi = plan.accel == "tcg" and plan.cpus > 1 and plan.icount_shift is None
    machine = MACHINES.get(plan.boot, "q35") + machine_options(FIRMWARES[plan.firmware])
    cmd = [
        *base_args(
            qemu,
            machine + f",memory-backend={RAM_ID}",
            plan.accel,
            plan.memory_mb,
            machine_extra=["-object", ram_backend(plan)],
            accel_options=",thread=multi" if multi else "",
            cpus=plan.cpus,
        ),
        *CHARDEV_ARGS,
        "-qmp",
        f"unix:{plan.qmp_socket},server=on,wait=off",
        "-device",
        "virtio-rng-pci",
    ]
    if plan.icount_shift is not None:
        cmd += ["-icount", f"shift={plan.icount_shift},{ICOUNT_SLEEP}"]
    if plan.boot == "kernel":
        if plan.kernel is None or plan.initramfs is None:
            raise UserError("kernel boot needs a kernel and an initramfs")
        cmd += [
            "-kernel",
            str(plan.kernel),
            "-initrd",
            str(plan.initramfs),
            "-append",
            plan.cmdline,
        ]
    elif plan.boot in MEDIA:
        source = MEDIA[plan.boot].source
        path = plan.iso if source == "iso" else plan.disk
        if path is None:
            raise UserError(f"{plan.boot} boot needs {'an ISO' if source == 'iso' else 'a disk'}")
        cmd += medium_args(plan.boot, path, read_only=source == "iso")
    else:
        raise UserError(f"unknown boot {plan.boot!r}: use kernel or one of {', '.join(MEDIA)}")
    firmware = FIRMWARES[plan.firmware]
    if firmware.uefi:
        if plan.firmware_code is None or plan.firmware_vars is None:
            raise UserError(f"firmware {plan.firmware} needs its code and variables files")
        cmd += firmware_args(firmware, plan.firmware_code, plan.firmware_vars)
    if plan.data_disk:
        readonly = ",readonly=on" if plan.data_disk_readonly else ""
        cmd += [
            "-drive",
            f"file={plan.data_disk},if=none,id=data0,format=qcow2{readonly}",
            "-device",
            "virtio-blk-pci,drive=data0,id=datadisk",
        ]
    for i, mac in enumerate(plan.macs):
        cmd += [
            "-netdev",
            netdev(i, plan.restricted, plan.forwards),
            "-device",
            f"virtio-net-pci,netdev=net{i},mac={mac}",
        ]
    if plan.shell_socket:
        cmd += [
            "-chardev",
            f"socket,id=shell0,path={plan.shell_socket},server=on,wait=off",
            "-device",
            "virtio-serial-pci,id=vser0",
            "-device",
            f"virtserialport,bus=vser0.0,chardev=shell0,name={SHELL_PORT_NAME}",
        ]
    for tag, path in plan.shares:
        cmd += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,readonly=on"]
    for i in range(HOTPLUG_PORTS):
        cmd += ["-device", f"pcie-root-port,id=hotplug{i},chassis={i + 1}"]
    if plan.incoming:  # the stream comes by QMP once every socket is connected
        cmd += ["-incoming", "defer"]
    return cmd
