"""The boot labels: isolinux's, typed at the serial `boot:` prompt, and
GRUB's, chosen in its menu (docs/boot-flow.md "Bootloader")."""

from __future__ import annotations

import re

import pytest
from boot_guest import (
    TRACE_LINE,
    boot_env,
    console_arrivals,
    mounts,
)
from promised import (
    SPEC_APPEND,
    SPEC_DEFAULT_LABEL,
    SPEC_INITRD,
    SPEC_KERNEL,
    SPEC_LABELS,
    SPEC_MENU_DIRECTIVES,
    SPEC_SAY_NAMES,
    SPEC_TIMEOUT_SECONDS,
    SPEC_TIMEOUT_TENTHS,
    isolinux_directives,
)

from harness import guest
from harness.artefact import sha256_file
from harness.disk import create_overlay
from harness.tools import run_tool
from harness.vm.firmware import bootloader

pytestmark = pytest.mark.boot

# The menu's wait as the host sees it: at least the promised 3 s (less half a
# second of console latency) and well short of any other value one might set.
TIMEOUT_WINDOW = (SPEC_TIMEOUT_SECONDS - 0.5, 6.0)


def cmdline_words(vm) -> list[str]:
    return vm.succeed("cat /proc/cmdline").split()


def assert_booted_through_isolinux(vm, label: str) -> None:
    """/proc/cmdline is, word for word, what isolinux passes for the label:
    its kernel, the promised APPEND line (which names the data partition)
    and its initramfs (then what a board types after the label: its test-shell line)."""
    assert cmdline_words(vm) == [
        f"BOOT_IMAGE={SPEC_KERNEL}",
        *SPEC_APPEND[label].split(),
        f"initrd={SPEC_INITRD}",
        *vm.board_args.split(),
    ]
    assert guest.DATA_PARAM in cmdline_words(vm)


@pytest.fixture
def menu_image(kubesolo_image):
    """The test image, whose menu this table promises; the release image's
    menu is tests/boot/test_release_console.py's."""
    if kubesolo_image.manifest["flavour"] != "test":
        pytest.skip("the test image's menu: the release menu is test_release_console.py's")
    return kubesolo_image


def test_image_has_the_spec_labels(menu_image):
    """docs/boot-flow.md "Bootloader": the image offers exactly the four labels of the
    table with their promised command lines (direct kernel boots use them too),
    and `kubesolo` is the default."""
    manifest = menu_image.manifest
    assert manifest["labels"] == SPEC_APPEND
    assert tuple(manifest["labels"]) == SPEC_LABELS
    assert manifest["default_label"] == SPEC_DEFAULT_LABEL


def test_iso_menu_is_the_promised_one(menu_image, tmp_path):
    """docs/boot-flow.md "Bootloader": the isolinux.cfg inside the built ISO
    boots `kubesolo` after TIMEOUT 30 (tenths: 3 s) at a serial `boot:`
    prompt, and each label loads the promised kernel and initramfs with the
    promised command line."""
    cfg = tmp_path / "isolinux.cfg"
    extract = ["-osirrox", "on", "-extract", "/isolinux/isolinux.cfg", str(cfg)]
    run_tool(["xorriso", "-indev", str(menu_image.iso), *extract])
    top, labels = isolinux_directives(cfg.read_text())
    assert top["TIMEOUT"] == str(SPEC_TIMEOUT_TENTHS)
    assert top["DEFAULT"] == SPEC_DEFAULT_LABEL
    assert {key: top[key] for key in SPEC_MENU_DIRECTIVES} == SPEC_MENU_DIRECTIVES
    assert all(name in top["SAY"].replace(",", " ").split() for name in SPEC_SAY_NAMES)
    assert labels == {
        label: {"KERNEL": SPEC_KERNEL, "INITRD": SPEC_INITRD, "APPEND": append}
        for label, append in SPEC_APPEND.items()
    }


def test_label_kubesolo_normal_boot(machine_factory):
    """docs/boot-flow.md "Bootloader", label `kubesolo`: a normal boot, typed at the
    prompt: stage 90 is reached with the data partition mounted, no debug
    trace and no shell. Coldplug ("Stage 00 — Early Mount") loaded the
    driver of the SATA controller the CD-ROM sits on, which kernel boots'
    machines leave out."""
    vm = machine_factory(boot="iso", label="kubesolo")
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo")
    env = boot_env(vm)
    assert (env["KUBESOLO_DEBUG"], env["KUBESOLO_SHELL"], env["KUBESOLO_NOPERSIST"]) == (
        "0",
        "0",
        "0",
    )
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"
    vm.succeed("grep -q '^ahci ' /proc/modules")
    text = vm.console_text()
    assert not TRACE_LINE.search(text)
    assert not re.search(guest.SHELL_PROMPT, text)


def test_label_kubesolo_debug_traces_the_stages(machine_factory):
    """docs/boot-flow.md "Bootloader", label `kubesolo-debug`: verbose init logging on
    the serial console: the shell trace of the stages (kubesolo.debug)
    appears on ttyS0, and the boot still reaches stage 90."""
    vm = machine_factory(boot="iso", label="kubesolo-debug")
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo-debug")
    assert "console=ttyS0,115200n8" in cmdline_words(vm)
    assert boot_env(vm)["KUBESOLO_DEBUG"] == "1"
    text = vm.console_text()
    after_stage_10 = text[re.search(guest.stage_started("20-persistent-mount.sh"), text).start() :]
    assert TRACE_LINE.search(after_stage_10), "no sh -x trace after stage 10"


GRUB_ONLY = pytest.mark.qemu_only("OVMF and the disk image are QEMU's")


@pytest.mark.console_shell
@pytest.mark.parametrize(
    ("firmware", "boot"),
    [
        ("bios", "iso"),  # isolinux: the label typed at boot:
        pytest.param("uefi", "iso", marks=GRUB_ONLY),  # GRUB: the arrow keys
        pytest.param("bios", "disk", marks=GRUB_ONLY),
    ],
)
def test_label_kubesolo_shell_drops_to_a_shell(machine_factory, firmware, boot):
    """docs/boot-flow.md "Bootloader", label `kubesolo-shell`, from isolinux's
    prompt and from GRUB's menu over the serial console: the boot stops in a
    shell on the console before stage 20; `exit` continues the boot."""
    vm = machine_factory(boot=boot, firmware=firmware, label="kubesolo-shell")
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)
    if bootloader(firmware, boot) == "isolinux":
        assert_booted_through_isolinux(vm, "kubesolo-shell")
    else:
        assert_booted_through_grub(vm, "kubesolo-shell")
    assert not re.search(guest.stage_started("20-persistent-mount.sh"), vm.console_text())
    assert guest.DATA_MNT not in mounts(vm)
    cursor = vm.console_cursor()
    vm.send_console("exit\r")
    vm.wait_for_console(guest.stage_started("20-persistent-mount.sh"), 60, since=cursor)
    vm.wait_for_boot()
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"


@pytest.mark.qemu_only("reads the data disk file back on the host")
def test_label_kubesolo_nopersist_runs_in_ram(machine_factory, kubesolo_image, tmp_path):
    """docs/boot-flow.md "Bootloader", label `kubesolo-nopersist`: the system runs fully
    in RAM (tmpfs at the data mount point) and the data disk it was given
    is left byte-for-byte unchanged."""
    disk = create_overlay(kubesolo_image.data_disk, tmp_path / "data.qcow2")
    before = sha256_file(disk)
    vm = machine_factory(boot="iso", label="kubesolo-nopersist", data_disk=disk)
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo-nopersist")
    assert boot_env(vm)["KUBESOLO_NOPERSIST"] == "1"
    table = mounts(vm)
    assert table[guest.DATA_MNT].fstype == "tmpfs"
    assert not [m for m in table.values() if m.source.startswith("/dev/vd")]
    vm.power_off()
    assert sha256_file(disk) == before


@pytest.mark.qemu_only("nothing typed at boot:, where a board types its test-shell line")
def test_default_label_boots_after_the_timeout(machine_factory):
    """docs/boot-flow.md "Bootloader": with nothing typed at the `boot:` prompt, the
    default label `kubesolo` boots on its own after the 3 s timeout: the wait
    between the prompt and isolinux loading the kernel, timed where the
    console's bytes arrive, is 3 s (2.5 to 6 s), and the ISO says 30 tenths
    (test_iso_menu_is_the_promised_one)."""
    vm = machine_factory(boot="iso")
    vm.start()
    vm.wait_for_console(guest.ISOLINUX_PROMPT, timeout=60)
    vm.wait_for_console(r"Loading /boot/vmlinuz", timeout=60)
    vm.wait_for_boot()
    (prompt,) = console_arrivals(vm, guest.ISOLINUX_PROMPT)
    (loading,) = console_arrivals(vm, r"^Loading /boot/vmlinuz")
    waited = loading - prompt
    assert TIMEOUT_WINDOW[0] <= waited <= TIMEOUT_WINDOW[1], f"isolinux booted after {waited:.1f}s"
    typed = re.search(r"boot: (.*?)\r?\n", vm.console_text()).group(1)
    assert not typed.strip(), f"something was typed at the prompt: {typed!r}"
    assert_booted_through_isolinux(vm, SPEC_DEFAULT_LABEL)


# ---- GRUB: UEFI from the ISO, BIOS and UEFI from the disk image ----------------------
def assert_booted_through_grub(vm, label: str) -> None:
    """/proc/cmdline is what GRUB passes for the label: its kernel and the
    promised command line (GRUB adds no initrd= word)."""
    assert cmdline_words(vm) == [f"BOOT_IMAGE={SPEC_KERNEL}", *SPEC_APPEND[label].split()]


@pytest.mark.qemu_only("reads the boot disk file back on the host")
def test_grub_label_kubesolo_nopersist_runs_in_ram(machine_factory, kubesolo_image, tmp_path):
    """docs/boot-flow.md "Bootloader", label `kubesolo-nopersist` chosen in GRUB's
    menu under Secure Boot from the disk image: the system runs in RAM and
    the disk, which holds the data partition, is left byte for byte unchanged."""
    disk = create_overlay(kubesolo_image.disk_image, tmp_path / "disk.qcow2", "raw")
    before = sha256_file(disk)
    vm = machine_factory(
        boot="disk", firmware="secure-boot", label="kubesolo-nopersist", data_disk=disk
    )
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_grub(vm, "kubesolo-nopersist")
    assert boot_env(vm)["KUBESOLO_NOPERSIST"] == "1"
    assert mounts(vm)[guest.DATA_MNT].fstype == "tmpfs"
    vm.power_off()
    assert sha256_file(disk) == before
