"""A board as a target of the suites: `BoardTarget` offers what a QEMU `Machine`
does (harness.vm.protocols.Target) on a board driven through labgrid
(docs/architecture.md "Hardware in the loop").

One board serves one target at a time: a test's targets take turns, and a
target whose board another one took boots again, on the data disk it asked
for, when it is next used. What only QEMU can do (a chosen kernel command
line, no data disk, extra NICs, shares, port forwards) is refused in one line
that says to mark the test `qemu_only`."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labgrid import Environment
from labgrid.exceptions import NoDriverFoundError, NoResourceFoundError
from labgrid.resource.common import Resource

from harness import guest
from harness.artefact import Image
from harness.errors import MachineNotRunning, UserError
from harness.lab.strategy import KubeSoloStrategy, LabError, lab_error_line
from harness.process import keep_grpc_out_of_forks
from harness.vm.boots import BootBook
from harness.vm.config import MachineConfig, validate
from harness.vm.console import Console, failures_except
from harness.vm.console_session import ConsoleSession
from harness.vm.driver import GuestDriver
from harness.vm.protocols import Target
from harness.vm.shell import Result

STRATEGY = "KubeSoloStrategy"


@dataclass(frozen=True)
class QemuOnly:
    setting: str
    why: str
    asked: Callable[[MachineConfig], bool]


# MachineConfig settings a board cannot honour: a test that asks for one is marked qemu_only.
# (memory, vCPUs, accelerator and network mode are the board's own and are ignored.)
QEMU_ONLY: tuple[QemuOnly, ...] = (
    QemuOnly("base_cmdline", "the bootloader keeps its label's line",
             lambda c: c.base_cmdline is not None),
    QemuOnly("initramfs", "a board boots the image's own initramfs",
             lambda c: c.initramfs is not None),
    QemuOnly("data_disk=False", "a board always has its data medium",
             lambda c: c.data_disk is False),
    QemuOnly("data_disk_readonly", "a write-protected data disk",
             lambda c: c.data_disk_readonly),
    QemuOnly("nics", "a board has the NICs it has", lambda c: c.nics != 1),
    QemuOnly("shares", "9p shares are QEMU's", lambda c: bool(c.shares)),
    QemuOnly("forwards", "port forwards are QEMU's user networking",
             lambda c: bool(c.forwards)),
)  # fmt: skip


def qemu_only_settings(config: MachineConfig) -> list[str]:
    """The settings of `config` that only a QEMU machine honours."""
    return [f"{q.setting} ({q.why})" for q in QEMU_ONLY if q.asked(config)]


class NeedsQemu(UserError):
    """A test asked a board for what only QEMU offers."""


class SharedConsole(UserError):
    """A test typed on the console of a board whose test shell shares that line."""


CONSOLE_SHELL_MARK = "console_shell"  # the marker of tests that type at a console shell
CONSOLE_SHELLS = re.compile(f"{guest.EMERGENCY_PROMPT}|{guest.SHELL_PROMPT}")


class WrongBoard(UserError):
    """The board cannot be what the test needs (its MAC): the test skips."""


class Board:
    """One labgrid target and its KubeSolo strategy, shared by the targets of a run."""

    def __init__(self, env: Environment, image: Image, role: str = "main") -> None:
        self.image = image
        self.role = role
        from labgrid.remote.client import Error as RemoteError  # not acquired, no coordinator

        try:
            target = env.get_target(role)
        except (RemoteError, NoResourceFoundError, ConnectionError, OSError) as err:
            # a remote place not acquired, an exporter without the resource, no coordinator
            raise LabError(f"board {role}: {lab_error_line(err)}") from None
        if target is None:
            raise LabError(f"labgrid env {env.config_file}: no target named {role!r}")
        self.target = target
        try:
            self.strategy: KubeSoloStrategy = target.get_driver(STRATEGY, activate=False)
        except NoDriverFoundError:
            raise LabError(
                f"labgrid env {env.config_file}: target {role!r} has no {STRATEGY} "
                "(add it under drivers, with imports: [harness.lab.strategy])"
            ) from None
        except NoResourceFoundError as err:
            raise LabError(f"board {role}: a resource is not available: {err}") from None
        self.owner: BoardTarget | None = None
        self.unavailable = unavailable_resources(target.resources)
        if self.unavailable:
            raise LabError(f"board {role}: not available: {', '.join(self.unavailable)}")

    def take(self, target: BoardTarget) -> None:
        """`target` gets the board; the one that had it is switched off."""
        if self.owner is not None and self.owner is not target:
            self.owner.release()
        self.owner = target

    def close(self) -> None:
        if self.owner is not None:
            self.owner.release()
        with contextlib.suppress(Exception):
            self.strategy.power_off()


# What a boot reaches, in order: a stage's OK line, KubeSolo's (the stand-in's)
# accepted line, the shell prompts that stop a boot.
MILESTONES = (
    guest.stage_done(),
    guest.STANDIN_ACCEPTED,
    guest.SHELL_PROMPT,
    guest.EMERGENCY_PROMPT,
)


def last_milestone(text: str) -> str | None:
    """A regex of the last milestone `text` (a boot's console) reached."""
    found = [(m.start(), m) for pattern in MILESTONES for m in re.finditer(pattern, text, re.M)]
    if not found:
        return None
    _, match = max(found, key=lambda f: f[0])
    if match.re.pattern == guest.stage_done():
        return guest.stage_done(match.group(1))
    return match.re.pattern


def unavailable_resources(resources: list[Resource]) -> list[str]:
    """Resources labgrid knows are missing (a USB device not plugged in, a
    place not acquired): named, so that the failure is one line."""
    return [
        f"{type(r).__name__} {getattr(r, 'name', None) or ''}".strip()
        for r in resources
        if not r.avail
    ]


class BoardTarget(GuestDriver):
    """A KubeSolo OS board as a test target (see the module docstring)."""

    def __init__(self, board: Board, config: MachineConfig, run_dir: Path) -> None:
        validate(config)
        refused = qemu_only_settings(config)
        if refused:
            raise NeedsQemu(
                f"a board cannot give {', '.join(refused)}: mark the test "
                "@pytest.mark.qemu_only(...) so that it skips on hardware"
            )
        board_mac = board.strategy.mac
        if config.macs and tuple(m.lower() for m in config.macs) != (board_mac.lower(),):
            raise WrongBoard(
                f"needs the MAC {', '.join(config.macs)}; board {board.role} has "
                f"{board_mac or 'an unknown MAC (set mac: in the strategy)'}"
            )
        if board.strategy.data_on_boot_medium and config.data_disk is not True:
            raise WrongBoard(
                "needs a data disk of its own; this board boots the disk image, "
                "whose data partition is on its boot medium"
            )
        self.board = board
        self.image = board.image
        self.config = config
        self.board_args = board.strategy.board_args
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.console = Console(run_dir / "console.log")
        self.activity = 0
        self._shell = None
        self.boots = BootBook()
        self._expect_cursor = 0
        self._powered = False
        self._booted = False  # it has had the board before (another target may have it now)
        self._fresh_key = f"fresh:{run_dir}:{id(self)}"

    # ---- life cycle ----
    def __enter__(self) -> BoardTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_up(self) -> bool:
        return self._powered and self.board.owner is self

    def _data_disk(self) -> tuple[str, Path]:
        """(what the data medium must hold, the image to write there)."""
        disk = self.config.data_disk
        if disk is True:
            return self._fresh_key, self.image.data_disk
        path = Path(disk).resolve()  # type: ignore[arg-type]
        return f"path:{path}", path

    def _type_boot_line(self) -> None:
        label = self.config.label or self.image.manifest.get("default_label", guest.DEFAULT_LABEL)
        labels = tuple(self.image.manifest.get("labels", guest.LABELS))
        self.board.strategy.type_boot_line(
            self.console, self.boots.cursor, label, self.config.kernel_args, labels
        )

    def start(self) -> None:
        """Take the board, write its media if they do not hold what this target
        needs, power it on and type the boot line at the bootloader's prompt."""
        if self.is_up:
            return
        with self._step("start"):
            self.board.take(self)
            strategy = self.board.strategy
            key, disk = self._data_disk()
            if strategy.data_on_boot_medium:  # a fresh data partition: the image again
                if strategy.data_written != key:
                    strategy.write_boot_medium(self.image.disk_image, again=True)
                    strategy.data_written = key
            else:
                strategy.write_boot_medium(self.image.iso)
                if strategy.data_written != key:
                    strategy.write_data_medium(disk, key)
            self._power_on()

    def _power_on(self) -> None:
        strategy = self.board.strategy
        self.boots.power_on(self.console)
        strategy.power_on(self.console)
        self._powered = self._booted = True
        self._shell = strategy.open_shell()
        self._type_boot_line()

    def _run(self, command: str, timeout: float) -> Result:
        if not self.is_up and self._booted:
            self._resume()
        if self.board.strategy.shares_console and CONSOLE_SHELLS.search(
            self.console.text(self.boots.cursor)
        ):
            self._refuse_shared(f"the test shell ran {command[:60]!r} with a console shell open")
        return super()._run(command, timeout)

    # ---- one UART: a shell on the console and the test shell would read the same bytes ----
    def _refuse_shared(self, what: str) -> None:
        if self.board.strategy.shares_console:
            raise SharedConsole(
                f"{what}: on board {self.board.role} the test shell shares the console's "
                f"line; mark the test @pytest.mark.{CONSOLE_SHELL_MARK} so that it skips there"
            )

    def send_console(self, text: str) -> None:
        self._refuse_shared(f"typing {text!r} on the console")
        super().send_console(text)

    def console_session(self, timeout: float = 60, since: int | None = None) -> ConsoleSession:
        self._refuse_shared("a console session")
        return super().console_session(timeout, since)

    def _resume(self) -> None:
        """Another target took the board since this one booted: boot again, on
        the data disk this target asked for, as far as its last boot came (its
        last completed stage), so that what its tests read is a whole boot."""
        milestone = last_milestone(self.console.text(self.boots.cursor))
        with self._step("resume (another target had the board)"):
            self.start()
            if milestone:
                self.console.wait_for(
                    milestone,
                    self.config.boot_timeout,
                    self.boots.cursor,
                    failures_except(self.config.allow_failures),
                )

    def _lines_closed(self) -> None:
        self.boots.end(self.console)
        self._powered = False
        if self._shell:
            self._shell.close()
            self._shell = None
        self.console.close()
        self.console = self.console.reopened()

    def release(self) -> None:
        """Another target takes the board: switch it off for now."""
        if self._powered:
            self._lines_closed()
            self.board.strategy.power_off()

    def close(self) -> None:
        """Switch the board off if this target has it; the run directory stays."""
        if self.board.owner is self:
            self.release()
            self.board.owner = None

    # ---- power ----
    def reboot(self) -> None:
        """A clean reboot from inside the guest: sync, then reboot(2); the
        bootloader line is typed again at the next prompt."""
        with self._step("reboot"):
            shell = self._shell_ready(30)
            self.boots.next_boot(self.console)
            shell.send_detached(guest.REBOOT_COMMAND)
            self._type_boot_line()

    def hard_reset(self) -> None:
        """The board's power cycled at once (no sync): what a reset button does."""
        with self._step("hard reset"):
            if not self.is_up:
                raise MachineNotRunning(f"board target {self.config.name} is not running")
            self._lines_closed()
            self.board.strategy.power_off()
            self._power_on()

    def power_off(self) -> None:
        """Pull the plug: the board's power goes off at once."""
        with self._step("power off"):
            self.release()


def _board_is_a_target(board: BoardTarget) -> Target:
    return board  # mypy proves that BoardTarget satisfies the interface


def open_environment(path: str, coordinator: str | None = None) -> Environment:
    """labgrid's Environment from an env file, with errors as one line."""
    from labgrid.exceptions import InvalidConfigError, NoConfigFoundError

    if not Path(path).is_file():
        raise LabError(f"labgrid env {path}: no such file")
    keep_grpc_out_of_forks()  # a script's, before labgrid's remote client imports gRPC
    try:
        env = Environment(config_file=path)
    except (NoConfigFoundError, InvalidConfigError) as err:
        raise LabError(f"labgrid env {path}: {lab_error_line(err)}") from None
    except ImportError as err:
        raise LabError(f"labgrid env {path}: an import failed: {lab_error_line(err)}") from None
    if coordinator:
        env.config.set_option("coordinator_address", coordinator)
    return env


@contextlib.contextmanager
def board_session(env: Environment, image: Image, role: str = "main") -> Iterator[Board]:
    board = Board(env, image, role)
    try:
        yield board
    finally:
        board.close()
