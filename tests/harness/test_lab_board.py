"""The QEMU board driven by labgrid alone, as a lab script without the harness's
fixtures would: the KubeSoloStrategy walks it off -> flashed -> booted -> shell,
the test shell answers on ttyS1, the data medium keeps its files across a power
cycle, and off leaves no QEMU (docs/architecture.md "Hardware in the loop")."""

from __future__ import annotations

import os
import re
from pathlib import Path

import labgrid
import pytest
from lab_envs import board_env_file

from harness import guest
from harness.lab.strategy import KubeSoloStrategy, Status

MARKER = "written-before-the-power-cycle"


@pytest.fixture
def board_env(tmp_path: Path) -> Path:
    """The nightly env (qemu-board.yaml) with its media and UART sockets in
    this test's own directory, so that it runs beside any other board."""
    return board_env_file(tmp_path, "qemu-board")


@pytest.mark.long
def test_the_strategy_walks_the_board_to_its_shell_and_the_data_stays(
    board_env: Path, kubesolo_image, tmp_path: Path
):
    """docs/architecture.md "Hardware in the loop": labgrid's env, power driver,
    serial ports and the KubeSolo strategy boot the board from its written boot
    medium; the data medium survives a power cycle; off kills the QEMU."""
    env = labgrid.Environment(str(board_env))
    strategy: KubeSoloStrategy = env.get_target("main").get_driver(
        "KubeSoloStrategy", activate=False
    )
    strategy.boot_image = kubesolo_image.iso
    strategy.write_data_medium(kubesolo_image.data_disk, "blank")
    try:
        strategy.transition("shell")
        assert strategy.status == Status.shell
        assert strategy.shell is not None
        shell = strategy.shell
        cmdline = shell.run("cat /proc/cmdline", 60).stdout.decode().split()
        assert "kubesolo.testshell=ttyS1" in cmdline
        line = shell.run(f"readlink /proc/$(cat {guest.RUN_DIR}/test-shell.pid)/fd/3", 60)
        assert line.stdout.decode().strip() == "/dev/ttyS1"
        assert strategy.console_log is not None
        assert re.search(guest.BOOT_MARKER, strategy.console_log.text())
        marker = f"{guest.KUBESOLO_PATH}/{MARKER}"
        assert shell.run(f"echo {MARKER} > {marker} && sync", 60).status == 0

        strategy.transition("off")
        qemu_pid = tmp_path / "board" / "qemu.pid"
        assert not qemu_pid.exists(), "off left the QEMU board's pid file"
        strategy.transition("shell")  # flashed again: nothing is rewritten
        assert strategy.shell.run(f"cat {marker}", 60).stdout.decode().strip() == MARKER
        pid = int(qemu_pid.read_text())
    finally:
        strategy.power_off()
    assert not os.path.exists(f"/proc/{pid}"), "the QEMU board still runs after off"


@pytest.fixture
def uefi_board_env(tmp_path: Path) -> Path:
    """qemu-board-uefi.yaml with its medium and sockets here."""
    return board_env_file(tmp_path, "qemu-board-uefi")


@pytest.mark.long
def test_a_secure_boot_board_boots_the_disk_image_through_grub(
    uefi_board_env: Path, kubesolo_image, tmp_path: Path
):
    """docs/architecture.md "Hardware in the loop" (UEFI boards): the strategy
    flashes the disk image, types the test shell's parameter at the end of
    GRUB's `linux` line, and the board boots under Secure Boot with its data
    partition on the boot medium, which keeps its files across a power cycle."""
    env = labgrid.Environment(str(uefi_board_env))
    strategy: KubeSoloStrategy = env.get_target("main").get_driver(
        "KubeSoloStrategy", activate=False
    )
    assert (strategy.bootloader, strategy.data_on_boot_medium) == ("grub", True)
    strategy.boot_image = kubesolo_image.disk_image
    try:
        strategy.transition("shell")
        shell = strategy.shell
        assert shell is not None
        cmdline = shell.run("cat /proc/cmdline", 60).stdout.decode().split()
        assert cmdline[-1] == "kubesolo.testshell=ttyS1"
        assert "secureboot: Secure boot enabled" in shell.run("dmesg", 60).stdout.decode()
        mounted = shell.run(f"grep ' {guest.DATA_MNT} ' /proc/mounts", 60).stdout.decode()
        assert mounted.split()[0] == "/dev/sda3"  # partition 3 of the USB stick
        marker = f"{guest.KUBESOLO_PATH}/{MARKER}"
        assert shell.run(f"echo {MARKER} > {marker} && sync", 60).status == 0
        strategy.transition("off")
        strategy.transition("shell")
        assert strategy.shell.run(f"cat {marker}", 60).stdout.decode().strip() == MARKER
    finally:
        strategy.power_off()
