"""What drives a booted KubeSolo OS guest, whatever runs it: the console (waits
from byte cursors, failure patterns, pexpect-style expects), the test shell
(execute, succeed, fail, run) and the stage timeline. `Machine` (QEMU) and
`harness.lab.BoardTarget` (a labgrid board) both build on it; they differ only
in how the guest is powered, booted and wired (docs/architecture.md "Targets")."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness import guest
from harness.boottime.chart import chart_svg
from harness.boottime.gate import boot_bars
from harness.boottime.timeline import Stage
from harness.errors import GuestAssertion, MachineNotRunning, UserError
from harness.log import logger, step
from harness.vm.boots import BootBook
from harness.vm.console import Console, failures_except
from harness.vm.console_session import ConsoleSession
from harness.vm.guest_files import copy_commands, listening_command
from harness.vm.retry import retry
from harness.vm.shell import GuestShell, Result

if TYPE_CHECKING:
    from harness.artefact import Image
    from harness.vm.config import MachineConfig

DEFAULT_COMMAND_TIMEOUT = 120.0
log = logger("vm")


class NoTestShell(UserError):
    """A test-shell command on a release image (docs/architecture.md "Release image")."""


class CommandFailed(GuestAssertion):
    """A guest command's status was not what succeed()/fail()/wait_until_succeeds() required."""


class ShellCommands:
    """The test-shell half of a target: commands by exit status and output, on
    top of one `_run` (a local test shell, or a shared machine's relay)."""

    config: MachineConfig
    activity: int  # public actions so far: tells which targets a test used

    def _run(self, command: str, timeout: float) -> Result:
        raise NotImplementedError

    @contextlib.contextmanager
    def _step(self, what: str) -> Iterator[None]:
        """A public action: counted (see `activity`) and logged as a step."""
        self.activity += 1
        with step(log, f"[{self.config.name}] {what}"):
            yield

    def run(self, command: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> Result:
        """Run a shell command in the guest: exit status, stdout and stderr bytes."""
        with self._step(f"run: {command}"):
            return self._run(command, timeout)

    def execute(self, command: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> tuple[int, str]:
        """(exit status, stdout) of a guest command."""
        with self._step(f"execute: {command}"):
            result = self._run(command, timeout)
        return result.status, result.stdout.decode(errors="replace")

    def succeed(self, command: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> str:
        """stdout of a guest command that must exit 0 (else CommandFailed)."""
        with self._step(f"succeed: {command}"):
            result = self._run(command, timeout)
            if result.status != 0:
                raise CommandFailed(
                    f"command failed with status {result.status}: {command}\n"
                    f"stdout: {result.stdout.decode(errors='replace')[-2000:]}\n"
                    f"stderr: {result.stderr.decode(errors='replace')[-2000:]}"
                )
        return result.stdout.decode(errors="replace")

    def fail(self, command: str, timeout: float = DEFAULT_COMMAND_TIMEOUT) -> str:
        """stdout of a guest command that must exit non-zero (else CommandFailed)."""
        with self._step(f"fail: {command}"):
            result = self._run(command, timeout)
            if result.status == 0:
                raise CommandFailed(f"command unexpectedly succeeded: {command}")
        return result.stdout.decode(errors="replace")

    def _wait_for_status(
        self, command: str, timeout: float, done: Callable[[int], bool], failure: str
    ) -> str:
        """stdout of the first run of `command` whose exit status is `done`,
        retried until `timeout`; then CommandFailed: `failure` and the last output."""
        deadline = time.monotonic() + timeout

        def attempt(last_try: bool) -> str | None:
            result = self._run(command, timeout=max(5, deadline - time.monotonic()))
            output = result.stdout.decode(errors="replace")
            if done(result.status):
                return output
            if last_try:
                raise CommandFailed(
                    f"{failure} after {timeout:.0f}s (status {result.status})\n"
                    f"last output: {output[-2000:]}"
                )
            return None

        return retry(attempt, timeout)

    def wait_until_succeeds(self, command: str, timeout: float = 60) -> str:
        """stdout of the first successful run of a guest command, retried until
        `timeout` (then CommandFailed with the last output)."""
        with self._step(f"wait until succeeds: {command}"):
            failure = f"not successful: {command}"
            return self._wait_for_status(command, timeout, lambda s: s == 0, failure)

    def wait_until_fails(self, command: str, timeout: float = 60) -> str:
        """stdout of the first failing run of a guest command, retried until
        `timeout` (then CommandFailed with the last output)."""
        with self._step(f"wait until fails: {command}"):
            failure = f"not failing: {command}"
            return self._wait_for_status(command, timeout, lambda s: s != 0, failure)

    def wait_for_open_port(self, port: int, timeout: float = 60) -> None:
        """Until a TCP socket in the guest listens on `port` (then CommandFailed)."""
        with self._step(f"wait for guest port {port} to listen"):
            failure = f"nothing listening on guest port {port}"
            self._wait_for_status(listening_command(port), timeout, lambda s: s == 0, failure)

    def wait_for_closed_port(self, port: int, timeout: float = 60) -> None:
        """Until no TCP socket in the guest listens on `port` (then CommandFailed).
        Only the check's "not listening" (status 1) counts: a broken check is no answer."""
        with self._step(f"wait for guest port {port} to close"):
            failure = f"guest port {port} still listening"
            self._wait_for_status(listening_command(port), timeout, lambda s: s == 1, failure)

    def copy_from_host(self, source: Path, target: str) -> None:
        """Copy a host file (with its permission bits) or directory (its tree)
        to `target` in the guest, through the test shell (harness.vm.guest_files)."""
        with self._step(f"copy {source} to {target}"):
            for command in copy_commands(Path(source), target):
                result = self._run(command, DEFAULT_COMMAND_TIMEOUT)
                if result.status != 0:
                    raise CommandFailed(
                        f"copy {source} to {target}: status {result.status}: "
                        f"{result.stderr.decode(errors='replace')[-2000:]}"
                    )

    def kubeconfig(self) -> str:
        return self.succeed(f"cat {guest.ADMIN_KUBECONFIG}")


class GuestDriver(ShellCommands):
    """The console half of a target, on a test shell of its own. A subclass
    sets these up and powers the guest; `start()` boots it when a command
    needs it."""

    image: Image
    console: Console
    run_dir: Path
    _shell: GuestShell | None
    boots: BootBook  # which console bytes belong to which boot
    _expect_cursor: int
    # parameters typed after the label at the bootloader prompt on every boot
    # (a board's kubesolo.testshell=ttyS1); isolinux appends them after initrd=
    board_args: str = ""

    @property
    def is_up(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def power_off(self) -> None:
        raise NotImplementedError

    def crash(self) -> None:
        """A sudden power failure (the NixOS driver's name for it): power_off()."""
        self.power_off()

    # ---- console ---------------------------------------------------------------
    def console_cursor(self) -> int:
        return self.console.cursor()

    def console_text(self, since: int | None = None) -> str:
        """The console since `since` (default: the start of this boot)."""
        self.activity += 1
        return self.console.text(self.boots.cursor if since is None else since)

    def wait_for_console(
        self,
        regex: str,
        timeout: float = 60,
        since: int | None = None,
        allow_failures: Iterable[str] | None = None,
    ) -> re.Match[str]:
        """The first match of `regex` after `since` (default: this boot). A failure
        pattern on the console raises BootFailure at once, except those named in
        `allow_failures` (default: the machine's own allow_failures)."""
        start = self.boots.cursor if since is None else since
        allowed = self.config.allow_failures if allow_failures is None else allow_failures
        with self._step(f"wait for /{regex}/ on the console"):
            return self.console.wait_for(regex, timeout, start, failures_except(allowed))

    def wait_for_boot(self, timeout: float | None = None) -> None:
        """Wait for the stage 90 marker of the current boot; any failure on the
        console (panic, [ERROR], ...) raises BootFailure at once."""
        with self._step("wait for boot (stage 90)"):
            self.console.wait_for(
                guest.BOOT_MARKER,
                timeout or self.config.boot_timeout,
                self.boots.cursor,
                failures_except(()),
            )

    def wait_for_stage(
        self, stage: str, timeout: float | None = None, since: int | None = None
    ) -> None:
        """Wait until init reports `stage` (e.g. "50-network.sh") complete in this
        boot, or after `since`; like the NixOS driver's wait_for_unit."""
        if stage not in guest.STAGES:
            raise UserError(f"unknown stage {stage!r}: use one of {', '.join(guest.STAGES)}")
        start = self.boots.cursor if since is None else since
        failures = failures_except(self.config.allow_failures)
        with self._step(f"wait for stage {stage}"):
            self.console.wait_for(
                guest.stage_done(stage), timeout or self.config.boot_timeout, start, failures
            )

    def send_console(self, text: str) -> None:
        with self._step(f"type {text!r} on the console"):
            self.console.send(text.encode())

    def expect_console(self, patterns: list[str], timeout: float = 60) -> tuple[int, re.Match[str]]:
        """pexpect style: (index of the pattern that matched first, match),
        reading from the console cursor after the last expect."""
        combined = "|".join(f"(?P<p{i}>{p})" for i, p in enumerate(patterns))
        start = max(self._expect_cursor, self.boots.cursor)
        with self._step(f"expect {patterns} on the console"):
            match = self.console.wait_for(combined, timeout, start, ())
        self._expect_cursor = self.console.byte_offset(start, match.end())
        index = next(i for i in range(len(patterns)) if match.group(f"p{i}") is not None)
        return index, match

    def console_session(self, timeout: float = 60, since: int | None = None) -> ConsoleSession:
        """A pexpect object on the live console (sendline, expect, interact),
        reading from `since` (default: now). The console log stays the record."""
        self.activity += 1
        return ConsoleSession(
            self.console, self.console.cursor() if since is None else since, timeout
        )

    # ---- test shell ---------------------------------------------------------
    def _shell_ready(self, timeout: float) -> GuestShell:
        if self.image.manifest.get("flavour") == "release":
            raise NoTestShell(
                f"machine {self.config.name} boots a release image, which has no test shell: "
                "mark the test console_only and use the console (console_session)"
            )
        if not self._shell:
            raise MachineNotRunning(f"machine {self.config.name} is not running: call start()")
        self._shell.wait_ready(self.boots.shell_boots, timeout)
        return self._shell

    def _run(self, command: str, timeout: float) -> Result:
        if not self.is_up:
            self.start()
        return self._shell_ready(self.config.boot_timeout).run(command, timeout)

    # ---- reports ------------------------------------------------------------
    def stage_timeline(self) -> list[Stage]:
        """The current boot's stages (docs/architecture.md "Boot-time gate")."""
        return self.boots.current(self.console)

    def boot_timelines(self) -> list[list[Stage]]:
        """Every boot of this target so far, the current one last."""
        return self.boots.timelines(self.console)

    def save_artifacts(self) -> Path:
        """stage-timeline.json (the last boot), boot-timelines.json (every
        boot) and boot-chart.svg (the last boot's chart) in the run directory."""
        boots = self.boot_timelines()
        last = boots[-1] if boots else []
        (self.run_dir / "stage-timeline.json").write_text(
            json.dumps([s.__dict__ for s in last], indent=2) + "\n"
        )
        (self.run_dir / "boot-timelines.json").write_text(
            json.dumps([[s.__dict__ for s in boot] for boot in boots], indent=2) + "\n"
        )
        if last:
            title = f"{self.config.name}: boot {len(boots)} (seconds after its first console byte)"
            (self.run_dir / "boot-chart.svg").write_text(chart_svg(title, boot_bars(last)))
        return self.run_dir
