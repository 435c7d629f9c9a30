"""One error root (docs/architecture.md "Errors"): every wait raises HarnessTimeout,
failures of the guest are assertions, and an allowed failure is allowed by name only."""

from __future__ import annotations

import socket

import pytest

from harness import errors
from harness.vm.console import BootFailure, Console, ConsoleTimeout, failures_except
from harness.vm.driver import CommandFailed
from harness.vm.shell import GuestShell, ShellTimeout


def test_the_families_derive_from_the_root_and_from_what_they_mean():
    assert issubclass(errors.GuestAssertion, errors.HarnessError)
    assert issubclass(errors.GuestAssertion, AssertionError)
    assert issubclass(errors.HarnessTimeout, errors.HarnessError)
    assert issubclass(errors.HarnessTimeout, TimeoutError)
    for cls in (BootFailure, CommandFailed):
        assert issubclass(cls, errors.GuestAssertion)
    for cls in (errors.UserError, errors.ToolFailed, errors.MachineNotRunning):
        assert issubclass(cls, errors.HarnessError)


def test_a_console_wait_raises_harness_timeout(tmp_path):
    console = Console(tmp_path / "console.log")
    with pytest.raises(errors.HarnessTimeout) as raised:
        console.wait_for("never", timeout=0.1)
    assert isinstance(raised.value, ConsoleTimeout)


def test_a_shell_that_never_starts_raises_harness_timeout():
    ours, guest_end = socket.socketpair()
    shell = GuestShell(ours)
    try:
        with pytest.raises(errors.HarnessTimeout) as raised:
            shell.wait_ready(1, timeout=0.1)
        assert isinstance(raised.value, ShellTimeout)
    finally:
        shell.close()
        guest_end.close()


def test_an_allowed_stage_error_still_lets_a_kernel_panic_fail(tmp_path):
    console = Console(tmp_path / "console.log")
    console.feed(b"[kubesolo-init] [ERROR] Stage 20-persistent-mount.sh failed\n")
    console.feed(b"(kubesolo-emergency) # ")
    allowed = failures_except({"stage-error"})
    assert console.wait_for("kubesolo-emergency", timeout=1, failures=allowed)
    console.feed(b"\nKernel panic - not syncing: Attempted to kill init!\n")
    with pytest.raises(BootFailure, match="kernel panic"):
        console.wait_for("never", timeout=5, failures=allowed)


def test_an_unknown_failure_name_is_refused():
    with pytest.raises(errors.UserError, match="unknown failure pattern stage-eror"):
        failures_except({"stage-eror"})
