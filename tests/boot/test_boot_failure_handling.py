"""Failure handling, kubesolo.shell and kubesolo.debug (docs/boot-flow.md
"Failure Handling", "Debugging")."""

from __future__ import annotations

import re

import pytest
from boot_guest import (
    TRACE_LINE,
    boot_env,
    mounts,
    wait_for_kubesolo,
)

from harness import guest

pytestmark = pytest.mark.boot

MISSING_DEVICE = "/dev/ksolo-missing"


def console_command(console, command: str, prompt: str) -> str:
    """Type a command at the shell on the serial console, as a person would
    (a pexpect session on the console); its echo and output up to the next prompt."""
    console.sendline(command)
    console.expect(prompt)
    return console.before


@pytest.mark.long
@pytest.mark.console_shell
def test_failing_stage_opens_emergency_shell_and_exit_retries(machine_factory):
    """docs/boot-flow.md "Failure Handling": a stage that fails (stage 20: the data device
    named by kubesolo.data never appears) logs [ERROR] naming the stage on
    the serial console and opens a shell there; fixing the cause from that
    shell and typing `exit` retries the boot sequence, which reaches
    stage 90."""
    vm = machine_factory(
        kernel_args=f"kubesolo.data={MISSING_DEVICE}",  # after the label's: the last one counts
        allow_failures=frozenset({"stage-error"}),  # a kernel panic still fails
    )
    vm.start()
    failed = guest.stage_failed("20-persistent-mount.sh")
    vm.wait_for_console(failed, timeout=vm.config.boot_timeout)
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=60)
    text = vm.console_text()
    assert re.search(rf"{guest.ERROR_MARKER} .*{MISSING_DEVICE}", text)
    assert not re.search(guest.stage_started("30-kernel-modules.sh"), text)
    assert vm.succeed(f"cat {guest.SHELL_MARK}").strip() == "kubesolo-emergency"

    # the shell on the console is a real shell: fix the cause there, then exit
    console = vm.console_session(timeout=30)  # from now: its prompt is on the screen
    assert "42" in console_command(console, "echo $((6 * 7))", guest.EMERGENCY_PROMPT)
    fix = f'ln -s "$(findfs LABEL={guest.DATA_LABEL})" {MISSING_DEVICE}'
    console_command(console, fix, guest.EMERGENCY_PROMPT)
    retry = vm.console_cursor()
    console.sendline("exit")
    vm.wait_for_console(r"Retrying the boot sequence", timeout=30, since=retry)
    # the second run goes through every stage, with no error this time
    for stage in guest.STAGES[:-1]:
        vm.wait_for_console(
            guest.stage_done(stage),
            timeout=vm.config.boot_timeout,
            since=retry,
            allow_failures=(),
        )
    vm.wait_for_console(guest.BOOT_MARKER, timeout=60, since=retry, allow_failures=())
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"
    vm.wait_until_succeeds(f"test -s {guest.STANDIN_ARGV}", timeout=60)


@pytest.mark.console_shell
def test_kubesolo_shell_stops_after_stage_10(machine_factory):
    """docs/boot-flow.md "Failure Handling": with kubesolo.shell the system drops to a
    shell on the console right after stage 10: stage 10 has run, stage 20
    has not (no data partition mounted); `exit` continues the boot."""
    vm = machine_factory(kernel_args="kubesolo.shell")
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)
    text = vm.console_text()
    assert re.search(guest.stage_done("10-parse-cmdline.sh"), text)
    assert not re.search(guest.stage_started("20-persistent-mount.sh"), text)
    assert boot_env(vm)["KUBESOLO_SHELL"] == "1"
    table = mounts(vm)
    assert guest.DATA_MNT not in table and guest.KUBESOLO_PATH not in table
    assert vm.succeed(f"cat {guest.SHELL_MARK}").strip() == "kubesolo-shell"
    console = vm.console_session(timeout=30)
    assert "42" in console_command(console, "echo $((6 * 7))", guest.SHELL_PROMPT)

    cursor = vm.console_cursor()
    console.sendline("exit")
    vm.wait_for_console(guest.stage_started("20-persistent-mount.sh"), 60, since=cursor)
    wait_for_kubesolo(vm)
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"


@pytest.mark.parametrize("stage", guest.STAGES[2:])
def test_kubesolo_debug_traces_each_stage(scenario, stage):
    """docs/boot-flow.md "Stage 10" (kubesolo.debug enables set -x) and "Debugging": with
    kubesolo.debug, the shell trace of each stage after the parameters are
    parsed appears on the serial console between its start and OK markers."""
    text = scenario("debug").console_text()
    start = re.search(guest.stage_started(stage), text).start()
    end = re.compile(guest.stage_done(stage)).search(text, start).start()
    assert TRACE_LINE.search(text[start:end]), f"no trace of {stage}"


def test_no_trace_without_kubesolo_debug(scenario):
    """docs/boot-flow.md "Stage 10": without kubesolo.debug there is no shell trace on
    the console (the debug test's trace lines are not ordinary output)."""
    assert not TRACE_LINE.search(scenario("default").console_text())
