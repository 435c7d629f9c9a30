"""How to boot one machine, whatever runs it (a QEMU `Machine`, a labgrid
board): `MachineConfig`, and its checks, each one clear line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.artefact import Image
from harness.errors import ToolFailed, UserError
from harness.tools import run_tool
from harness.vm import firmware as fw
from harness.vm.console import failures_except

# The one boot timeout: a boot to stage 90 under TCG, two workers on two cores.
# A KubeSolo node's boot is the same OS boot (KubeSolo starts after stage 90).
DEFAULT_BOOT_TIMEOUT = 240.0


@dataclass(frozen=True)
class MachineConfig:
    """How to boot one machine. `data_disk`: True = a fresh overlay over the
    image's blank disk, False = none, a path = that qcow2, used in place
    (so several machines can share it one after the other). A disk-image
    boot keeps its data on its boot disk: True = a fresh overlay over the
    image's kubesolo-os.img, a path = that qcow2 (an earlier machine's disk).
    `data_disk_readonly`: the guest sees the data disk write-protected.
    `firmware` and `boot` (a medium) are harness.vm.firmware's tables."""

    boot: str = "kernel"
    firmware: str = "bios"
    label: str | None = None
    kernel_args: str = ""
    base_cmdline: str | None = None
    initramfs: Path | None = None  # another initramfs for the image's kernel (the bench's floor)
    memory_mb: int = 512
    cpus: int = 1
    data_disk: bool | str | Path = True
    data_disk_readonly: bool = False
    accel: str = "auto"
    # TCG counting instructions (QEMU's -icount shift=N,sleep=on): the
    # guest's clock follows its own work, not the host's load (the boot-time
    # gate, docs/architecture.md "Boot-time gate")
    icount_shift: int | None = None
    network: str = "restricted"
    nics: int = 1
    macs: tuple[str, ...] = ()
    shares: dict[str, Path] = field(default_factory=dict)
    forwards: tuple[int, ...] = ()
    name: str = "vm"
    boot_timeout: float = DEFAULT_BOOT_TIMEOUT
    # names of console failure patterns this machine is expected to show
    # (harness.vm.console.FAILURE_PATTERNS), e.g. {"stage-error"}
    allow_failures: frozenset[str] = frozenset()


def default_mac(index: int) -> str:
    return f"52:54:00:12:34:{0x56 + index:02x}"


def validate(config: MachineConfig) -> None:
    """One clear line for each kind of bad configuration."""
    checks = (
        (config.boot in fw.MEDIA, f"boot={config.boot!r}: use one of {', '.join(fw.MEDIA)}"),
        (
            config.firmware in fw.FIRMWARES,
            f"firmware={config.firmware!r}: use one of {', '.join(fw.FIRMWARES)}",
        ),
        (
            config.boot != "kernel" or config.firmware == "bios",
            f"firmware={config.firmware!r}: a kernel boot starts the kernel itself; "
            "boot a medium (iso, disk, ...) to run a firmware",
        ),
        (
            not (is_disk_boot(config) and (config.data_disk is False or config.data_disk_readonly)),
            f"boot={config.boot!r}: the data partition is on the boot disk, which is writable",
        ),
        (
            config.network in ("restricted", "open"),
            f"network={config.network!r}: use 'restricted' or 'open'",
        ),
        (config.accel in ("auto", "kvm", "tcg"), f"accel={config.accel!r}: use auto, kvm or tcg"),
        (
            config.icount_shift is None
            or (config.accel == "tcg" and 0 <= config.icount_shift <= 10),
            f"icount_shift={config.icount_shift}: 0-10, with accel='tcg' (KVM counts nothing)",
        ),
        (config.memory_mb >= 128, f"memory_mb={config.memory_mb}: at least 128"),
        (config.cpus >= 1, f"cpus={config.cpus}: at least 1"),
        (config.nics >= 0, f"nics={config.nics}: not negative"),
        (config.boot_timeout > 0, f"boot_timeout={config.boot_timeout}: more than 0 seconds"),
        (
            all(1 <= port <= 65535 for port in config.forwards),
            f"forwards={config.forwards}: guest ports are 1-65535",
        ),
        (
            not config.macs or len(config.macs) == config.nics,
            f"macs: give one MAC per NIC ({config.nics})",
        ),
        (
            not (config.data_disk_readonly and config.data_disk is False),
            "data_disk_readonly: the machine has no data disk",
        ),
    )
    for ok, message in checks:
        if not ok:
            raise UserError(f"MachineConfig {message}")
    disk = config.data_disk
    if not isinstance(disk, bool):
        check_qcow2(Path(disk))
    for tag, path in config.shares.items():
        if not Path(path).is_dir():
            raise UserError(f"share {tag}: {path} is not a directory")
    if isinstance(config.allow_failures, bool | str):
        raise UserError(
            "MachineConfig allow_failures: a set of failure pattern names, e.g. {'stage-error'}"
        )
    failures_except(config.allow_failures)


def is_disk_boot(config: MachineConfig) -> bool:
    """The machine boots the disk image, which holds its data partition too."""
    return fw.MEDIA.get(config.boot, fw.MEDIA["kernel"]).source == "disk"


def check_qcow2(disk: Path) -> None:
    """A data disk QEMU can open: it exists, and so does its backing chain."""
    if not disk.is_file():
        raise UserError(f"data_disk {disk}: no such qcow2 file")
    try:
        run_tool(["qemu-img", "info", "-U", "--backing-chain", str(disk)])
    except ToolFailed as err:
        detail = str(err).split("qemu-img: ", 1)[-1]
        raise UserError(
            f"data_disk {disk}: QEMU cannot open it ({detail}); restore what it names, "
            "or use a fresh disk"
        ) from None


def kernel_cmdline(image: Image, config: MachineConfig) -> str:
    base = config.base_cmdline if config.base_cmdline is not None else image.cmdline(config.label)
    return " ".join(p for p in (base, config.kernel_args) if p)
