"""The isolinux labels of the ISO, chosen at the serial `boot:` prompt
(docs/boot-flow.md "Stage Details" > "Bootloader (isolinux/syslinux)")."""

from __future__ import annotations

import re
import time

import pytest
from boot_guest import (
    TRACE_LINE,
    boot_env,
    mounts,
)

from harness import guest
from harness.artefact import sha256_file
from harness.disk import create_overlay

pytestmark = pytest.mark.boot

# docs/boot-flow.md "Bootloader": the labels and the default label's timeout.
SPEC_LABELS = ("kubesolo", "kubesolo-debug", "kubesolo-shell", "kubesolo-nopersist")
SPEC_DEFAULT_LABEL = "kubesolo"
SPEC_TIMEOUT_SECONDS = 3.0


def cmdline_words(vm) -> list[str]:
    return vm.succeed("cat /proc/cmdline").split()


def assert_booted_through_isolinux(vm, label: str, kubesolo_image) -> None:
    """/proc/cmdline is the label's APPEND line as isolinux passed it, and
    always names the data partition."""
    words = cmdline_words(vm)
    assert "BOOT_IMAGE=/boot/vmlinuz" in words, "the kernel was not started by isolinux"
    assert guest.DATA_PARAM in words
    label_words = kubesolo_image.manifest["labels"][label].split()
    assert [w for w in words if w in label_words] == label_words


def test_image_has_the_spec_labels(kubesolo_image):
    """docs/boot-flow.md "Bootloader": the ISO offers exactly the four labels of the
    table, `kubesolo` is the default, and every label names the data
    partition."""
    manifest = kubesolo_image.manifest
    assert sorted(manifest["labels"]) == sorted(SPEC_LABELS)
    assert manifest["default_label"] == SPEC_DEFAULT_LABEL
    for label, cmdline in manifest["labels"].items():
        assert guest.DATA_PARAM in cmdline.split(), label


def test_label_kubesolo_normal_boot(machine_factory, kubesolo_image):
    """docs/boot-flow.md "Bootloader", label `kubesolo`: a normal boot, typed at the
    prompt: stage 90 is reached with the data partition mounted, no debug
    trace and no shell."""
    vm = machine_factory(boot="iso", label="kubesolo")
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo", kubesolo_image)
    env = boot_env(vm)
    assert (env["KUBESOLO_DEBUG"], env["KUBESOLO_SHELL"], env["KUBESOLO_NOPERSIST"]) == (
        "0",
        "0",
        "0",
    )
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"
    text = vm.console_text()
    assert not TRACE_LINE.search(text)
    assert not re.search(guest.SHELL_PROMPT, text)


def test_label_kubesolo_debug_traces_the_stages(machine_factory, kubesolo_image):
    """docs/boot-flow.md "Bootloader", label `kubesolo-debug`: verbose init logging on
    the serial console: the shell trace of the stages (kubesolo.debug)
    appears on ttyS0, and the boot still reaches stage 90."""
    vm = machine_factory(boot="iso", label="kubesolo-debug")
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo-debug", kubesolo_image)
    assert "console=ttyS0,115200n8" in cmdline_words(vm)
    assert boot_env(vm)["KUBESOLO_DEBUG"] == "1"
    text = vm.console_text()
    after_stage_10 = text[re.search(guest.stage_started("20-persistent-mount.sh"), text).start() :]
    assert TRACE_LINE.search(after_stage_10), "no sh -x trace after stage 10"


def test_label_kubesolo_shell_drops_to_a_shell(machine_factory, kubesolo_image):
    """docs/boot-flow.md "Bootloader", label `kubesolo-shell`: the boot stops in a shell
    on the console before stage 20; `exit` continues the boot."""
    vm = machine_factory(boot="iso", label="kubesolo-shell")
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)
    assert_booted_through_isolinux(vm, "kubesolo-shell", kubesolo_image)
    assert not re.search(guest.stage_started("20-persistent-mount.sh"), vm.console_text())
    assert guest.DATA_MNT not in mounts(vm)
    cursor = vm.console_cursor()
    vm.send_console("exit\r")
    vm.wait_for_console(guest.stage_started("20-persistent-mount.sh"), 60, since=cursor)
    vm.wait_for_boot()
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"


def test_label_kubesolo_nopersist_runs_in_ram(machine_factory, kubesolo_image, tmp_path):
    """docs/boot-flow.md "Bootloader", label `kubesolo-nopersist`: the system runs fully
    in RAM (tmpfs at the data mount point) and the data disk it was given
    is left byte-for-byte unchanged."""
    disk = create_overlay(kubesolo_image.data_disk, tmp_path / "data.qcow2")
    before = sha256_file(disk)
    vm = machine_factory(boot="iso", label="kubesolo-nopersist", data_disk=disk)
    vm.start()
    vm.wait_for_boot()
    assert_booted_through_isolinux(vm, "kubesolo-nopersist", kubesolo_image)
    assert boot_env(vm)["KUBESOLO_NOPERSIST"] == "1"
    table = mounts(vm)
    assert table[guest.DATA_MNT].fstype == "tmpfs"
    assert not [m for m in table.values() if m.source.startswith("/dev/vd")]
    vm.power_off()
    assert sha256_file(disk) == before


def test_default_label_boots_after_the_timeout(machine_factory, kubesolo_image):
    """docs/boot-flow.md "Bootloader": with nothing typed at the `boot:` prompt, the
    default label `kubesolo` boots on its own after the 3 s timeout."""
    vm = machine_factory(boot="iso")
    vm.start()
    vm.wait_for_console(r"boot: ", timeout=60)
    prompt_seen = time.monotonic()
    vm.wait_for_console(r"Loading /boot/vmlinuz", timeout=60)
    waited = time.monotonic() - prompt_seen
    vm.wait_for_boot()
    # isolinux counts in tenths of a second; allow for console latency
    assert waited >= SPEC_TIMEOUT_SECONDS - 0.5, f"isolinux booted after {waited:.1f}s"
    typed = re.search(r"boot: (.*?)\r?\n", vm.console_text()).group(1)
    assert not typed.strip(), f"something was typed at the prompt: {typed!r}"
    assert_booted_through_isolinux(vm, SPEC_DEFAULT_LABEL, kubesolo_image)
