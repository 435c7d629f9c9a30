"""QEMU command lines: hermetic networking, loopback-only forwards, boot modes."""

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.vm import qemu
from harness.vm.qemu import Forward, QemuPlan

KERNEL_PLAN = QemuPlan(
    accel="tcg",
    memory_mb=512,
    cpus=1,
    boot="kernel",
    kernel=Path("/img/vmlinuz"),
    initramfs=Path("/img/initramfs"),
    cmdline="console=ttyS0",
    data_disk=Path("/run/d.qcow2"),
    forwards=(Forward(40000, 6443),),
    shell_socket=Path("/s/shell.sock"),
)


def args_after(cmd, flag):
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def test_restricted_user_network_with_loopback_forwards():
    cmd = qemu.command_line(KERNEL_PLAN)
    (netdev,) = args_after(cmd, "-netdev")
    assert "restrict=on" in netdev.split(",")
    assert "hostfwd=tcp:127.0.0.1:40000-:6443" in netdev.split(",")


def test_open_network_is_opt_in():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "restricted": False})
    assert "restrict=off" in args_after(qemu.command_line(plan), "-netdev")[0]


def test_kernel_boot_passes_kernel_initrd_and_cmdline():
    cmd = qemu.command_line(KERNEL_PLAN)
    assert args_after(cmd, "-kernel") == ["/img/vmlinuz"]
    assert args_after(cmd, "-initrd") == ["/img/initramfs"]
    assert args_after(cmd, "-append") == ["console=ttyS0"]
    assert args_after(cmd, "-accel") == ["tcg"]


def test_iso_boot_uses_the_cdrom_and_no_kernel():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "boot": "iso", "iso": Path("/img/k.iso")})
    cmd = qemu.command_line(plan)
    assert "-kernel" not in cmd
    assert any("media=cdrom" in d and "/img/k.iso" in d for d in args_after(cmd, "-drive"))


def test_kernel_boots_drop_sata_and_the_iso_keeps_its_cdrom_controller():
    iso = QemuPlan(**{**KERNEL_PLAN.__dict__, "boot": "iso", "iso": Path("/img/k.iso")})
    assert args_after(qemu.command_line(KERNEL_PLAN), "-machine") == [
        "q35,sata=off,memory-backend=ram0"
    ]
    assert args_after(qemu.command_line(iso), "-machine") == ["q35,memory-backend=ram0"]


def test_ram_is_a_shared_memfd_and_a_restore_maps_the_snapshot_copy_on_write():
    """docs/architecture.md "Snapshots": a save copies the memfd, a restore
    maps that file privately, so no restore changes it."""
    assert args_after(qemu.command_line(KERNEL_PLAN), "-object") == [
        "memory-backend-memfd,id=ram0,size=512M,share=on"
    ]
    restoring = QemuPlan(**{**KERNEL_PLAN.__dict__, "ram_file": Path("/snap/ram")})
    assert args_after(qemu.command_line(restoring), "-object") == [
        "memory-backend-file,id=ram0,size=512M,mem-path=/snap/ram,share=off"
    ]


def test_the_console_is_qemus_stdio_where_no_byte_is_dropped():
    """docs/architecture.md "Console": the serial port on QEMU's stdin and
    stdout (the harness's pipes), never a signal from a typed byte."""
    cmd = qemu.command_line(KERNEL_PLAN)
    assert "stdio,id=con0,signal=off" in args_after(cmd, "-chardev")
    assert args_after(cmd, "-serial") == ["chardev:con0"]


def test_test_shell_is_a_named_virtio_serial_port():
    devices = args_after(qemu.command_line(KERNEL_PLAN), "-device")
    assert f"virtserialport,bus=vser0.0,chardev=shell0,name={qemu.SHELL_PORT_NAME}" in devices


def test_every_nic_gets_its_mac_and_only_the_first_the_forwards():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "macs": ("52:54:00:00:00:01", "52:54:00:00:00:02")})
    cmd = qemu.command_line(plan)
    netdevs = args_after(cmd, "-netdev")
    assert len(netdevs) == 2 and "hostfwd" not in netdevs[1]
    assert all("restrict=on" in n for n in netdevs)
    assert "virtio-net-pci,netdev=net1,mac=52:54:00:00:00:02" in args_after(cmd, "-device")


def test_data_disk_is_writable_unless_read_only():
    (drive,) = args_after(qemu.command_line(KERNEL_PLAN), "-drive")
    assert drive == "file=/run/d.qcow2,if=none,id=data0,format=qcow2"
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "data_disk_readonly": True})
    (drive,) = args_after(qemu.command_line(plan), "-drive")
    assert drive.split(",")[-1] == "readonly=on"


def test_no_data_disk_means_no_drive():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "data_disk": None})
    assert args_after(qemu.command_line(plan), "-drive") == []


def test_shares_are_read_only_9p():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "shares": (("kimages", Path("/imgs")),)})
    (virtfs,) = args_after(qemu.command_line(plan), "-virtfs")
    assert "mount_tag=kimages" in virtfs and "readonly=on" in virtfs


def test_multithreaded_tcg_only_with_several_cpus():
    plan = QemuPlan(**{**KERNEL_PLAN.__dict__, "cpus": 2})
    assert args_after(qemu.command_line(plan), "-accel") == ["tcg,thread=multi"]


@pytest.mark.parametrize("boot", ["floppy", "pxe"])
def test_unknown_boot_mode_is_refused(boot):
    with pytest.raises(UserError, match="unknown boot"):
        qemu.command_line(QemuPlan(**{**KERNEL_PLAN.__dict__, "boot": boot}))
