"""The labgrid strategy of a KubeSolo OS board: off -> flashed -> booted -> shell
(docs/architecture.md "Hardware in the loop").

- off: the power driver switches the board off (a PDU outlet, or the QEMU
  board's `off`: the plug pulled).
- flashed: off, then the boot medium is written (behind its SD-mux switched to
  the host) with the image, once per image: never again while that image is
  on it, so never during a test. The data medium is written only when a test
  asks for a fresh or a given data disk (`write_data_medium`).
- booted: power on, connect the console, type the boot line (the label and
  `kubesolo.testshell=ttyS1`) at the bootloader's serial menu, wait for the
  stage 90 marker. The board's `firmware` and `medium` say which menu that
  is: isolinux's `boot:` prompt (BIOS, the ISO), or GRUB's menu (UEFI, or
  the disk image), where the label is chosen with the arrow keys and the
  parameters are typed at the end of its `linux` line (`e`, then Ctrl-E).
- shell: the test shell answers on its own serial line, or, on a board with
  one UART (the strategy's `testshell` bound to a `SharedConsoleDriver` over
  the console, and `kubesolo.testshell=ttyS0` typed), on the console's line,
  which its frames then share with the boot's messages.

`BoardTarget` (harness.lab.board) drives a board through the same steps
(`power_on`, `type_boot_line`, `open_shell`, `power_off`), with the harness's
Console fed from the console driver in a thread. Registered with labgrid:
an env file names it after `imports: [harness.lab.strategy]`."""

from __future__ import annotations

import enum
import hashlib
import tempfile
import time
from pathlib import Path
from subprocess import CalledProcessError
from typing import Any

import attr
from labgrid.driver.common import Driver
from labgrid.driver.exception import ExecutionError
from labgrid.factory import target_factory
from labgrid.protocol import ConsoleProtocol
from labgrid.step import step
from labgrid.strategy.common import Strategy, StrategyError, never_retry
from serial import SerialException

from harness import guest
from harness.errors import UserError
from harness.lab.media import write_medium
from harness.lab.stream import SerialStream, SharedLine
from harness.vm.console import Console, ConsoleTimeout, failures_except
from harness.vm.firmware import FIRMWARES, bootloader
from harness.vm.shell import GuestShell

TESTSHELL_ARG = "kubesolo.testshell=ttyS1"
# what a board's boot medium holds: the ISO (the data partition on a medium of
# its own), or the disk image (the OS and its data partition on one medium)
BOOT_MEDIA = {"iso": "kubesolo-os.iso", "disk": "kubesolo-os.img"}
# GRUB's entry editor (emacs keys): the next line, the end of the line, boot
GRUB_NEXT_LINE, GRUB_END_OF_LINE, GRUB_BOOT_EDITED = "\x0e", "\x05", "\x18"


class LabError(UserError):
    """The lab did not do what the harness asked: one line naming the board and the part."""


class Status(enum.Enum):
    unknown = 0
    off = 1
    flashed = 2
    booted = 3
    shell = 4


def boot_line(label: str, kernel_args: str, board_args: str) -> str:
    """What is typed at the bootloader's `boot:` prompt: the label, then
    parameters isolinux appends to the label's command line."""
    return " ".join(p for p in (label, board_args, kernel_args) if p)


def boot_keys(
    loader: str,
    label: str,
    kernel_args: str,
    board_args: str,
    labels: tuple[str, ...] = guest.LABELS,
) -> str:
    """The keys that boot `label` with the parameters after its command line:
    at isolinux's prompt the boot line and Enter; in GRUB's menu one
    Ctrl-N per place (in `labels`, the image's menu), then, with parameters, `e` (the
    editor), down to the entry's `linux` line (guest.GRUB_EDITOR_LINUX_LINE),
    its end, the parameters and Ctrl-X; else Enter."""
    if loader == "isolinux":
        return boot_line(label, kernel_args, board_args) + "\r"
    extra = " ".join(p for p in (board_args, kernel_args) if p)
    keys = guest.MENU_DOWN * labels.index(label)
    to_linux = GRUB_NEXT_LINE * guest.GRUB_EDITOR_LINUX_LINE + GRUB_END_OF_LINE
    return keys + (f"e{to_linux} {extra}{GRUB_BOOT_EDITED}" if extra else "\r")


def image_id(path: Path) -> str:
    """Which image a medium holds: path, size and mtime (cheap; a rebuilt image
    is a new file in the image cache)."""
    st = path.stat()
    return hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()


@target_factory.reg_driver
@attr.s(eq=False)
class KubeSoloStrategy(Strategy):  # type: ignore[misc]
    """off -> flashed -> booted -> shell for a KubeSolo OS board."""

    bindings = {  # noqa: RUF012 (labgrid's attrs class field)
        "power": "PowerProtocol",
        "console": "ConsoleProtocol",
        "testshell": "ConsoleProtocol",
        "boot_medium": {"USBStorageDriver", "DiskImageDriver"},
        "data_medium": {"USBStorageDriver", "DiskImageDriver", None},  # None: medium "disk"
        "boot_mux": {"USBSDMuxDriver", None},
        "data_mux": {"USBSDMuxDriver", None},
    }
    # typed after the label at the boot: prompt on every boot
    board_args = attr.ib(default=TESTSHELL_ARG, validator=attr.validators.instance_of(str))
    boot_timeout = attr.ib(default=240.0, validator=attr.validators.instance_of(float))
    # seconds for a powered board's serial lines to open, and to the boot: prompt
    connect_timeout = attr.ib(default=30.0, validator=attr.validators.instance_of(float))
    prompt_timeout = attr.ib(default=60.0, validator=attr.validators.instance_of(float))
    # the board's NIC MAC, if known ("" = unknown): tests that need another one skip
    mac = attr.ib(default="", validator=attr.validators.instance_of(str))
    # images: keys for transition() without the harness (labgrid-client, a script)
    image = attr.ib(default="kubesolo-iso", validator=attr.validators.instance_of(str))
    data_image = attr.ib(default="kubesolo-data", validator=attr.validators.instance_of(str))
    # the board's firmware (Secure Boot on or off is the board's setting) and
    # what its boot medium holds (BOOT_MEDIA)
    firmware = attr.ib(default="bios", validator=attr.validators.in_(list(FIRMWARES)))
    medium = attr.ib(default="iso", validator=attr.validators.in_(list(BOOT_MEDIA)))
    status = attr.ib(default=Status.unknown)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.boot_image: Path | None = None  # set by the harness, else from the env's images
        self._boot_written: str | None = None
        self.data_written: str | None = None  # what the data medium holds, by the harness's key
        self.console_log: Console | None = None  # transition()'s own console
        self.shell: GuestShell | None = None
        self._shell_line: Any = None  # the test shell's end of a shared console line
        self._work_dir: Path | None = None

    @property
    def work_dir(self) -> Path:
        """Raw copies of qcow2 data disks for USB media, transition()'s console
        log: the harness's artifacts (set by its plugin), else a directory of
        our own (mkdtemp), never a fixed name another user could make first."""
        if self._work_dir is None:
            self._work_dir = Path(tempfile.mkdtemp(prefix="kubesolo-lab-"))
        return self._work_dir

    @work_dir.setter
    def work_dir(self, path: Path) -> None:
        self._work_dir = path

    @property
    def bootloader(self) -> str:
        return bootloader(self.firmware, self.medium)

    @property
    def data_on_boot_medium(self) -> bool:
        """The disk image: a fresh data partition is the image written again."""
        return self.medium == "disk"

    @property
    def shares_console(self) -> bool:
        """One UART: the test shell rides the console's line."""
        return isinstance(self.testshell, SharedConsoleDriver)

    # ---- what a board is called in one-line errors ----
    def where(self, driver: Any) -> str:
        port = getattr(driver, "port", None)
        if port is not None and hasattr(port, "host"):
            return f"{type(port).__name__} {port.host}:{port.port}"
        if port is not None and hasattr(port, "port"):
            return f"{type(port).__name__} {port.port}"
        if port is not None and hasattr(port, "path"):
            return f"{type(port).__name__} {port.path}"
        return type(driver).__name__

    def fail(self, what: str) -> LabError:
        return LabError(f"board {self.target.name}: {what}")

    # ---- media ----
    def _env_image(self, key: str) -> Path | None:
        try:
            return Path(self.target.env.config.get_image_path(key))
        except (KeyError, AttributeError):
            return None

    def _write(self, medium: Any, mux: Any, image: Path) -> None:
        try:
            if mux is not None:
                self.target.activate(mux)
                mux.set_mode("host")
            self.target.activate(medium)
            write_medium(medium, image, self.work_dir)
            if mux is not None:
                mux.set_mode("dut")
        except (ExecutionError, CalledProcessError) as err:
            raise self.fail(f"writing {image.name} failed: {_last_line(err)}") from None

    @step(args=["image"])  # type: ignore[misc]
    def write_boot_medium(self, image: Path, again: bool = False) -> None:
        """Write the boot medium, unless it holds this image already (`again`:
        write it anyway, a disk image's data partition blank again)."""
        if self._boot_written == image_id(image) and not again:
            return
        self.power_off()
        self._write(self.boot_medium, self.boot_mux, image)
        self._boot_written = image_id(image)

    @step(args=["image"])  # type: ignore[misc]
    def write_data_medium(self, image: Path, key: str) -> None:
        """Give the board this data disk (a blank one resets it); `key` names
        what the medium then holds, so the same key is never written twice."""
        if self.data_medium is None:
            raise self.fail("it has no data medium: its data partition is on its boot medium")
        self.power_off()
        self._write(self.data_medium, self.data_mux, image)
        self.data_written = key

    # ---- power and lines ----
    def power_off(self) -> None:
        if self.shell:
            self.shell.close()
            self.shell = None
        self.target.activate(self.power)
        try:
            self.power.off()
        except (ExecutionError, CalledProcessError) as err:
            raise self.fail(f"power off failed: {_last_line(err)}") from None
        for line in dict.fromkeys((self.console, self.testshell)):
            self.target.deactivate(line)  # a ser2net port may drop; reconnect at power-on

    def power_on(self, console: Console) -> None:
        """Power on and feed `console` from the console line."""
        self.target.activate(self.power)
        try:
            self.power.on()
        except (ExecutionError, CalledProcessError) as err:
            raise self.fail(f"power on failed: {_last_line(err)}") from None
        line = SerialStream(self._connect(self.console, "console"))
        if self.shares_console:
            shared = SharedLine(line)
            self._shell_line = shared.reader()  # before the first byte: KSH-READY is kept
            console.attach(shared.reader())
        else:
            console.attach(line)

    def _connect(self, driver: Any, what: str) -> Any:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                self.target.activate(driver)
                return driver
            except (SerialException, OSError) as err:
                if time.monotonic() > deadline:
                    raise self.fail(
                        f"the {what} line ({self.where(driver)}) cannot be opened within "
                        f"{self.connect_timeout:.0f}s after power-on: {lab_error_line(err)}"
                    ) from None
                time.sleep(0.1)

    def type_boot_line(
        self,
        console: Console,
        since: int,
        label: str,
        kernel_args: str,
        labels: tuple[str, ...] = guest.LABELS,
    ) -> None:
        """At the bootloader's serial menu (this boot's), boot `label` (of the
        menu's `labels`) with `kernel_args` and the board's own parameters."""
        menu = guest.ISOLINUX_PROMPT if self.bootloader == "isolinux" else guest.GRUB_MENU
        try:
            console.wait_for(menu, self.prompt_timeout, since, failures_except(()))
        except ConsoleTimeout:
            if console.cursor() == since:
                raise self.fail(
                    f"the console ({self.where(self.console)}) showed nothing within "
                    f"{self.prompt_timeout:.0f}s of power-on: check its wiring, speed and the power"
                ) from None
            what = "prompt (boot:)" if self.bootloader == "isolinux" else "menu (GRUB)"
            raise self.fail(
                f"no bootloader {what} on the console within {self.prompt_timeout:.0f}s: "
                "does the boot medium hold the image, and is the board set to boot from it?"
            ) from None
        keys = boot_keys(self.bootloader, label, kernel_args, self.board_args, labels)
        console.send(keys.encode())

    def open_shell(self) -> GuestShell:
        """The test shell's line, as a GuestShell (its READY lines count boots)."""
        if self.shares_console:
            self.shell = GuestShell(self._shell_line)
        else:
            self.shell = GuestShell(SerialStream(self._connect(self.testshell, "test-shell")))
        return self.shell

    # ---- labgrid's state machine, for use without the harness ----
    @never_retry  # type: ignore[misc]
    @step(args=["status"])  # type: ignore[misc]
    def transition(self, status: Status | str, *, step: Any) -> None:
        if not isinstance(status, Status):
            status = Status[status]
        if status == Status.unknown:
            raise StrategyError(f"can not transition to {status}")
        if status == self.status:
            step.skip("nothing to do")
            return
        if status == Status.off:
            self.power_off()
        elif status == Status.flashed:
            image = self.boot_image or self._env_image(self.image)
            if image is None:
                raise StrategyError(f"no boot image: set boot_image or images: {self.image}")
            self.write_boot_medium(image)
            data = self._env_image(self.data_image)
            if data is not None and self.data_written is None and not self.data_on_boot_medium:
                self.write_data_medium(data, f"blank:{image_id(data)}")
        elif status == Status.booted:
            if self.status not in (Status.flashed, Status.booted, Status.shell):
                self.transition(Status.flashed)
            self.power_off()
            self.console_log = Console(self.work_dir / "console.log")
            self.power_on(self.console_log)
            self.open_shell()  # before the guest says KSH-READY: a UART keeps no bytes
            self.type_boot_line(self.console_log, 0, guest.DEFAULT_LABEL, "")
            self.console_log.wait_for(guest.BOOT_MARKER, self.boot_timeout, 0)
        elif status == Status.shell:
            if self.status != Status.booted or self.shell is None:
                self.transition(Status.booted)
            assert self.shell is not None
            self.shell.wait_ready(1, self.boot_timeout)
        self.status = status


def strategy_shares_console(drivers: list[dict[str, Any]] | dict[str, Any]) -> bool:
    """Does an env target's driver list give the strategy's test shell a
    SharedConsoleDriver (one UART)? Read from the env file, before any board
    is opened."""
    items = list(drivers.items()) if isinstance(drivers, dict) else [
        kv for entry in drivers for kv in entry.items()
    ]  # fmt: skip
    shared = {(s or {}).get("name") for kind, s in items if kind == SharedConsoleDriver.__name__}
    return any(
        kind == KubeSoloStrategy.__name__
        and ((s or {}).get("bindings") or {}).get("testshell") in shared
        for kind, s in items
    )


@target_factory.reg_driver
@attr.s(eq=False)
class SharedConsoleDriver(Driver, ConsoleProtocol):  # type: ignore[misc]
    """The test shell's line of a board with one UART: the console's own. Bound
    as the strategy's `testshell`, it tells the strategy to read the console
    once for both; on its own it reads and writes the console underneath."""

    bindings = {"console": "ConsoleProtocol"}  # noqa: RUF012 (labgrid's attrs class field)

    def read(self, size: int = 1, timeout: float = 0.0, max_size: int | None = None) -> bytes:
        return bytes(self.console.read(size=size, timeout=timeout, max_size=max_size))

    def write(self, data: bytes) -> None:
        self.console.write(data)


def lab_error_line(err: BaseException) -> str:
    """One line for whatever labgrid or pyserial raised."""
    text = getattr(err, "msg", None) or str(err)
    return " ".join(str(text).split())[:300]


def _last_line(err: ExecutionError | CalledProcessError) -> str:
    """The line that says what went wrong: a failed command's last output line."""
    if isinstance(err, CalledProcessError):
        output = err.output.decode(errors="replace") if isinstance(err.output, bytes) else ""
        lines = output.replace("\r", "\n").splitlines()
    else:
        lines = [*(err.stderr or []), *(err.stdout or []), str(err.msg)]
    text = [str(line).strip() for line in lines if str(line).strip()]
    return text[-1] if text else f"exit status {getattr(err, 'returncode', '?')}"
