"""The target interface the suites use (docs/architecture.md "Targets"): what
a test may do with a KubeSolo OS guest whatever runs it. Two implementations:
`harness.vm.machine.Machine` (a local QEMU process) and
`harness.lab.board.BoardTarget` (a board driven through labgrid: a real one,
or a QEMU process wired like one). What only QEMU offers (QMP, hot-plug, port
forwards, a chosen kernel command line) is not here: tests that need it are
marked `qemu_only` and skip on a board."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.vm.console import Console
from harness.vm.console_session import ConsoleSession
from harness.vm.machine import Machine, MachineConfig
from harness.vm.shell import Result
from harness.vm.timeline import Stage


@runtime_checkable
class Target(Protocol):
    """A guest the suites can power, boot, watch and command."""

    config: MachineConfig  # what the test asked for (name, boot_timeout, allow_failures...)
    console: Console  # every console byte since the first, across boots
    run_dir: Path  # console.log and the other artefacts
    activity: int  # public actions so far: which targets a test used
    board_args: str  # typed after the label on every boot: "" for QEMU

    @property
    def is_up(self) -> bool: ...

    # power
    def start(self) -> None: ...
    def power_off(self) -> None: ...
    def hard_reset(self) -> None: ...
    def reboot(self) -> None: ...
    def close(self) -> None: ...

    # console: byte cursors, failure patterns, pexpect
    def console_cursor(self) -> int: ...
    def console_text(self, since: int | None = None) -> str: ...
    def wait_for_console(
        self,
        regex: str,
        timeout: float = 60,
        since: int | None = None,
        allow_failures: Iterable[str] | None = None,
    ) -> re.Match[str]: ...
    def wait_for_boot(self, timeout: float | None = None) -> None: ...
    def wait_for_stage(
        self, stage: str, timeout: float | None = None, since: int | None = None
    ) -> None: ...
    def send_console(self, text: str) -> None: ...
    def expect_console(
        self, patterns: list[str], timeout: float = 60
    ) -> tuple[int, re.Match[str]]: ...
    def console_session(self, timeout: float = 60, since: int | None = None) -> ConsoleSession: ...

    # the test shell
    def run(self, command: str, timeout: float = ...) -> Result: ...
    def execute(self, command: str, timeout: float = ...) -> tuple[int, str]: ...
    def succeed(self, command: str, timeout: float = ...) -> str: ...
    def fail(self, command: str, timeout: float = ...) -> str: ...
    def wait_until_succeeds(self, command: str, timeout: float = 60) -> str: ...

    # reports
    def stage_timeline(self) -> list[Stage]: ...
    def boot_timelines(self) -> list[list[Stage]]: ...
    def kubeconfig(self) -> str: ...
    def save_artifacts(self) -> Path: ...


def _machine_is_a_target(machine: Machine) -> Target:
    return machine  # mypy proves that Machine satisfies the interface
