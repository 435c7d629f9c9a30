"""What a release image allows at its console (docs/boot-flow.md "Release
console"): no shell label, a locked GRUB, no shell from `kubesolo.shell` or
a failed stage without `kubesolo.debug`, and with it the emergency shell,
which is the recovery. The release image is built here (with the stand-in
as its KubeSolo) and seen through its console only."""

from __future__ import annotations

import re

import pytest

from harness import guest
from harness.build import boot_menu, disk_image, fat
from harness.build.builder import BuildRequest, build
from harness.build.rootfs import BUILD_DIR
from harness.errors import UserError
from harness.tools import run_tool
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only("boots a release image of its own")]

REFUSED_SHELL = "kubesolo.shell ignored: the release image opens a shell only with kubesolo.debug"
NO_EMERGENCY_SHELL = (
    "Boot failed; the release image opens the emergency shell only with kubesolo.debug: "
    "boot its kubesolo-debug label. Press Enter to retry the boot sequence"
)
FAILING = {"data_disk_readonly": True, "allow_failures": frozenset({"stage-error"})}


@pytest.fixture(scope="module")
def release():
    return build(BuildRequest(flavour="release", standin=True))


def test_the_release_menus_have_no_shell_label_and_are_locked(release, tmp_path):
    """The menus inside the built release media (the ISO's isolinux and GRUB
    menus, GRUB's on the disk image's ESP) offer the release labels only and
    are locked: isolinux without a prompt, GRUB with its superuser."""
    assert tuple(release.manifest["labels"]) == guest.RELEASE_LABELS
    menu = boot_menu.load(BUILD_DIR / "boot-menu.toml", "release")
    assert menu.locked and tuple(menu.labels) == guest.RELEASE_LABELS
    extracted = {}
    for inside in ("/isolinux/isolinux.cfg", "/boot/grub/grub.cfg"):
        out = tmp_path / inside.rsplit("/", 1)[1]
        run_tool(["xorriso", "-osirrox", "on", "-indev", str(release.iso), "-extract", inside,
                  str(out)])  # fmt: skip
        extracted[inside] = out.read_text()
    esp = fat.read_file(release.disk_image, "EFI/debian/grub.cfg", disk_image.ESP.offset).decode()
    assert boot_menu.parse_isolinux(extracted["/isolinux/isolinux.cfg"]) == menu
    assert boot_menu.parse_grub(extracted["/boot/grub/grub.cfg"]) == menu
    assert boot_menu.parse_grub(esp) == menu


def test_kubesolo_shell_alone_opens_no_shell(machine_factory, release):
    vm = machine_factory(image=release, kernel_args="kubesolo.shell")
    vm.start()
    vm.wait_for_console(guest.STANDIN_ACCEPTED, timeout=vm.config.boot_timeout)
    text = vm.console_text()
    assert REFUSED_SHELL in text
    assert guest.SHELL_PROMPT.replace("\\", "") not in text


def test_a_failed_stage_opens_no_shell_and_enter_retries(machine_factory, release):
    """A stage that fails (the data disk is read-only) says how to get the
    emergency shell and waits; Enter retries the boot, which fails again."""
    vm = machine_factory(image=release, **FAILING)
    vm.start()
    vm.wait_for_console(NO_EMERGENCY_SHELL, timeout=vm.config.boot_timeout)
    cursor = vm.console_cursor()
    vm.send_console("\r")
    vm.wait_for_console("Retrying the boot sequence", timeout=60, since=cursor)
    vm.wait_for_console(NO_EMERGENCY_SHELL, timeout=vm.config.boot_timeout, since=cursor)
    assert "(kubesolo-emergency) #" not in vm.console_text()


def test_kubesolo_debug_is_the_recovery(machine_factory, release):
    """With kubesolo.debug (the kubesolo-debug label) the failed stage opens the
    emergency shell, as on the test image."""
    vm = machine_factory(image=release, kernel_args="kubesolo.debug", **FAILING)
    vm.start()
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=vm.config.boot_timeout)


def test_grub_asks_a_login_nobody_has_before_editing(machine_factory, release):
    """UEFI from the release ISO: `e` at GRUB's menu asks for a user name; the
    entry's command line is not shown."""
    vm = machine_factory(image=release, boot="iso", firmware="uefi")
    vm.start()
    vm.expect_console([guest.GRUB_MENU], timeout=vm.config.boot_timeout)
    vm.send_console("e")
    vm.expect_console([r"Enter username:"], timeout=60)
    assert "setparams" not in vm.console_text()


def test_the_release_iso_under_bios_takes_nothing_typed(machine_factory, release):
    """isolinux's prompt would pass what is typed to the kernel: the release
    ISO has none (PROMPT 0, NOESCAPE 1) and boots its default label exactly,
    whatever is typed at its console."""
    vm = machine_factory(image=release, boot="iso")
    vm.start()
    for _ in range(3):  # as someone at the console would, while it boots
        vm.send_console("kubesolo kubesolo.debug kubesolo.shell rdinit=/bin/sh\r")
    vm.wait_for_console(guest.STANDIN_ACCEPTED, timeout=vm.config.boot_timeout)
    text = vm.console_text()
    assert not re.search(guest.ISOLINUX_PROMPT, text)
    (line,) = re.findall(r"Command line: (.*?)\r?$", text, re.M)[:1]
    default = release.manifest["labels"]["kubesolo"]
    assert line == f"BOOT_IMAGE=/boot/vmlinuz {default} initrd=/boot/initramfs"


def test_a_label_cannot_be_chosen_at_the_release_isos_bios_menu(release):
    with pytest.raises(UserError, match="boots its default label"):
        vm = Machine(release, MachineConfig(boot="iso", label="kubesolo-debug"))
        try:
            vm._choose_label()
        finally:
            vm.close()
