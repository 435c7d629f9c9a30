"""What the console alone shows (docs/architecture.md "Release image"): these
tests use no test shell, so they run on the release image as shipped
(`--flavour release`) as well as on the test image: the stage markers in
order, the `kubesolo-shell` label's shell, a failing stage's emergency shell
and `exit`, persistence through those shells, and that the release image
has no second channel into the node."""

from __future__ import annotations

import re

import pexpect
import pytest

from harness import guest

pytestmark = [pytest.mark.boot, pytest.mark.console_only]

MARKER_FILE = f"{guest.KUBESOLO_PATH}/console-only-marker"
IMAGE_BIN = guest.KUBESOLO_IN_IMAGE
NOT_EXECUTABLE = f"{guest.KUBESOLO_BIN} is not executable"


def answering(console, prompt: str, shown: bool = True):
    """`console` once the shell at `prompt` (already `shown`, or awaited)
    reads what is typed: keys typed the moment a prompt appears were lost at
    times (the shell sets the line up and asks the terminal where its cursor
    is), so an empty line is typed until a fresh prompt answers, as a person
    would."""
    if not shown:
        console.expect(prompt)
    for _ in range(10):
        console.sendline("")
        try:
            console.expect(prompt, timeout=15)
            return console
        except pexpect.TIMEOUT:
            continue
    raise AssertionError(f"the shell at {prompt!r} never answered a typed line")


def console_shell_args(image) -> str:
    """kubesolo.shell, with kubesolo.debug on the release image, which opens no
    console shell without it (docs/boot-flow.md "Release console")."""
    return "kubesolo.shell" + (" kubesolo.debug" if image.manifest["flavour"] == "release" else "")


def typed(console, command: str, prompt: str) -> str:
    """Type a command at a shell on the console; its output up to the next prompt."""
    console.sendline(command)
    console.expect(prompt)
    return console.before.replace("\r", "")


def test_markers_in_order_on_the_console(machine_factory):
    """docs/boot-flow.md "Boot markers": every stage starts and completes, in
    order, once, and KubeSolo (here the stand-in) accepts its command line."""
    vm = machine_factory()
    vm.start()
    vm.wait_for_boot()
    vm.wait_for_console(guest.STANDIN_ACCEPTED, timeout=60)
    text = vm.console_text()
    events = re.findall(r"Stage (\S+) (starting|complete)", text)
    assert events == [(s, e) for s in guest.STAGES for e in ("starting", "complete")]
    assert not re.search(guest.ERROR_MARKER, text)


@pytest.mark.console_shell
def test_shell_label_then_a_failing_stage_keeps_state_through_console_shells(
    machine_factory, kubesolo_image
):
    """docs/boot-flow.md "Failure Handling" and "Stage 20 — Persistent
    Mount", through the console only: kubesolo.shell stops after stage 10 in a
    shell; a KubeSolo made non-executable there fails stage 90, whose
    emergency shell has the data partition mounted; a file written there
    survives a power cycle; fixing the cause and typing `exit` retries the
    boot from stage 00, which stops at stage 10's shell again and, with
    `exit` there, reaches KubeSolo."""
    vm = machine_factory(
        kernel_args=console_shell_args(kubesolo_image), allow_failures=frozenset({"stage-error"})
    )
    token = "kept-across-boots"
    for boot in (1, 2):
        since = vm.console_cursor()
        if boot == 1:
            vm.start()
        else:
            vm.hard_reset()  # the power cycle: nothing is synced by the OS
        vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout, since=since)
        console = answering(vm.console_session(timeout=vm.config.boot_timeout), guest.SHELL_PROMPT)
        assert not re.search(guest.stage_started("20-persistent-mount.sh"), vm.console_text(since))
        typed(console, f"chmod -x {IMAGE_BIN}", guest.SHELL_PROMPT)
        console.sendline("exit")
        answering(console, guest.EMERGENCY_PROMPT, shown=False)
        assert re.search(
            rf"{guest.ERROR_MARKER} .*{re.escape(NOT_EXECUTABLE)}", vm.console_text(since)
        )
        if boot == 1:
            assert "absent" in typed(
                console, f"cat {MARKER_FILE} || echo absent", guest.EMERGENCY_PROMPT
            )
            typed(console, f"echo {token} > {MARKER_FILE} && sync", guest.EMERGENCY_PROMPT)
    assert token in typed(console, f"cat {MARKER_FILE}", guest.EMERGENCY_PROMPT)

    retry = vm.console_cursor()
    typed(console, f"chmod +x {IMAGE_BIN}", guest.EMERGENCY_PROMPT)
    console.sendline("exit")
    vm.wait_for_console("Retrying the boot sequence", timeout=30, since=retry)
    answering(console, guest.SHELL_PROMPT, shown=False)  # the retry reruns stage 10's stop
    console.sendline("exit")
    vm.wait_for_console(guest.STANDIN_ACCEPTED, timeout=vm.config.boot_timeout, since=retry)


@pytest.mark.console_shell
def test_the_release_image_has_no_second_channel(machine_factory, kubesolo_image):
    """docs/architecture.md "Release image": seen from the emergency shell
    after stages 20-80 ran, the release image runs no test shell, no getty
    and no other shell, and nothing listens on any port (KubeSolo, the only
    listener it may have, has not started); the test image, by contrast, runs
    its test shell, which proves the check can see one."""
    vm = machine_factory(
        kernel_args=console_shell_args(kubesolo_image), allow_failures=frozenset({"stage-error"})
    )
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)
    console = answering(vm.console_session(timeout=vm.config.boot_timeout), guest.SHELL_PROMPT)
    typed(console, f"chmod -x {IMAGE_BIN}", guest.SHELL_PROMPT)
    console.sendline("exit")
    answering(console, guest.EMERGENCY_PROMPT, shown=False)
    processes = typed(console, "ps -o comm,args | tail -n +2", guest.EMERGENCY_PROMPT)
    listening = typed(console, "netstat -ltnu | tail -n +3 | wc -l", guest.EMERGENCY_PROMPT)
    programs = typed(console, "ls /usr/lib/kubesolo-os/bin", guest.EMERGENCY_PROMPT)
    release = vm.image.manifest["flavour"] == "release"
    has_test_shell = "test-shell" in processes
    assert has_test_shell is not release, processes
    assert ("test-shell" in programs) is not release, programs
    assert not re.search(r"getty|dropbear|sshd|telnetd", processes), processes
    assert listening.strip().splitlines()[-1] == "0", listening
