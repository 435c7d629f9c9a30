"""What a test may do with a KubeSolo OS guest, as capabilities a backend
implements one by one (docs/architecture.md "Targets"): shell access, the
console (read, or read and typed on), power control, the boot record and port
forwards. `Target` is what a booting backend offers: a QEMU `Machine`
(harness.vm.machine) and a labgrid board (harness.lab.board.BoardTarget).
A shared node's `RemoteMachine` (harness.vm.relay) offers the shell, the
console's text and port forwards. What only QEMU has (QMP, hot-plug, a
clean shutdown that waits for QEMU) is not here: tests that need it are
marked `qemu_only` and annotate `Machine`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from harness.boottime.timeline import Stage
from harness.vm.config import MachineConfig
from harness.vm.console import Console
from harness.vm.console_session import ConsoleSession
from harness.vm.shell import Result


@runtime_checkable
class ShellAccess(Protocol):
    """Commands in the guest by exit status and output, through its test shell."""

    config: MachineConfig  # what the test asked for (name, boot_timeout, allow_failures...)
    run_dir: Path  # console.log and the other artefacts
    activity: int  # public actions so far: which targets a test used

    def run(self, command: str, timeout: float = ...) -> Result: ...
    def execute(self, command: str, timeout: float = ...) -> tuple[int, str]: ...
    def succeed(self, command: str, timeout: float = ...) -> str: ...
    def fail(self, command: str, timeout: float = ...) -> str: ...
    def wait_until_succeeds(self, command: str, timeout: float = 60) -> str: ...
    def wait_until_fails(self, command: str, timeout: float = 60) -> str: ...
    def wait_for_open_port(self, port: int, timeout: float = 60) -> None: ...
    def wait_for_closed_port(self, port: int, timeout: float = 60) -> None: ...
    def copy_from_host(self, source: Path, target: str) -> None: ...
    def kubeconfig(self) -> str: ...


@runtime_checkable
class ConsoleLog(Protocol):
    """The console as text: what this boot printed, and its stage 90 marker."""

    def console_text(self, since: int | None = None) -> str: ...
    def wait_for_boot(self, timeout: float | None = None) -> None: ...


@runtime_checkable
class ConsoleAccess(ConsoleLog, Protocol):
    """The live console: byte cursors, waits with failure patterns, typing, pexpect."""

    console: Console  # every console byte since the first, across boots
    board_args: str  # typed after the label on every boot: "" for QEMU

    def console_cursor(self) -> int: ...
    def wait_for_console(
        self,
        regex: str,
        timeout: float = 60,
        since: int | None = None,
        allow_failures: Iterable[str] | None = None,
    ) -> re.Match[str]: ...
    def wait_for_stage(
        self, stage: str, timeout: float | None = None, since: int | None = None
    ) -> None: ...
    def send_console(self, text: str) -> None: ...
    def expect_console(
        self, patterns: list[str], timeout: float = 60
    ) -> tuple[int, re.Match[str]]: ...
    def console_session(self, timeout: float = 60, since: int | None = None) -> ConsoleSession: ...


@runtime_checkable
class PowerControl(Protocol):
    """Power: on (and boot), a clean reboot, the reset button, the plug."""

    @property
    def is_up(self) -> bool: ...

    def start(self) -> None: ...
    def reboot(self) -> None: ...
    def hard_reset(self) -> None: ...
    def power_off(self) -> None: ...
    def crash(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class BootRecord(Protocol):
    """Each boot's stage timeline, and the artefacts drawn from them."""

    def stage_timeline(self) -> list[Stage]: ...
    def boot_timelines(self) -> list[list[Stage]]: ...
    def save_artifacts(self) -> Path: ...


@runtime_checkable
class PortForwarding(Protocol):
    """127.0.0.1 ports of the host that reach ports of the guest."""

    def forward_port(self, guest_port: int) -> int: ...
    def host_port(self, guest_port: int) -> int | None: ...


@runtime_checkable
class Target(ShellAccess, ConsoleAccess, PowerControl, BootRecord, Protocol):
    """A guest the suites can power, boot, watch and command."""
