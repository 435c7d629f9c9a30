"""Hardware in the loop without hardware: the env files load through labgrid's own
loader, a board refuses what only QEMU offers in one line, the QEMU board's
wiring, the serial stream over a network serial port, and media written as
images (docs/architecture.md "Hardware in the loop")."""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
import threading
from pathlib import Path

import labgrid
import pytest
from labgrid.driver import SerialDriver
from labgrid.resource import NetworkSerialPort

from harness import guest
from harness.lab import qemu_board
from harness.lab.board import (
    QEMU_ONLY,
    Board,
    BoardTarget,
    NeedsQemu,
    SharedConsole,
    WrongBoard,
    open_environment,
    qemu_only_settings,
)
from harness.lab.media import DiskImageDriver, image_format, write_file_medium
from harness.lab.strategy import (
    KubeSoloStrategy,
    LabError,
    SharedConsoleDriver,
    boot_keys,
    boot_line,
    strategy_shares_console,
)
from harness.lab.stream import SerialStream, SharedLine
from harness.lab.unix_serial import UnixSerialDriver, UnixSerialPort
from harness.vm.config import MachineConfig
from harness.vm.shell import GuestShell, _lines

REPO = Path(__file__).resolve().parents[2]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "labgrid"


class FakeImage:
    iso = Path("/nonexistent/kubesolo-os.iso")
    data_disk = Path("/nonexistent/data.qcow2")
    manifest = {"default_label": "kubesolo"}  # noqa: RUF012


# ---- the env files, through labgrid's own loader ----
def test_the_x86_example_loads_and_binds_without_touching_hardware():
    env = labgrid.Environment(str(FIXTURES / "x86-board.example.yaml"))
    target = env.get_target("main")
    strategy = target.get_driver("KubeSoloStrategy", activate=False)
    assert isinstance(strategy, KubeSoloStrategy)
    assert type(strategy.power).__name__ == "NetworkPowerDriver"
    assert type(strategy.boot_medium).__name__ == "USBStorageDriver"
    assert type(strategy.boot_mux).__name__ == "USBSDMuxDriver"
    assert strategy.console.name == "console" and strategy.testshell.name == "testshell"
    assert strategy.board_args == "kubesolo.testshell=ttyS1"


def test_a_missing_sd_mux_is_one_line():
    env = labgrid.Environment(str(FIXTURES / "x86-board.example.yaml"))
    with pytest.raises(LabError) as err:
        Board(env, FakeImage())  # type: ignore[arg-type]
    assert str(err.value) == ("board main: not available: USBSDMuxDevice boot, USBSDMuxDevice data")


def test_the_qemu_board_env_is_wired_like_hardware():
    env = labgrid.Environment(str(FIXTURES / "qemu-board.yaml"))
    strategy = env.get_target("main").get_driver("KubeSoloStrategy", activate=False)
    assert type(strategy.power).__name__ == "ExternalPowerDriver"
    for line, name in ((strategy.console, "console"), (strategy.testshell, "testshell")):
        assert isinstance(line, UnixSerialDriver) and isinstance(line.port, UnixSerialPort)
        assert line.port.path.endswith(f"/artifacts/qemu-board/serial/{name}.sock")
    assert isinstance(strategy.boot_medium, DiskImageDriver)
    assert "qemu-board-power on" in strategy.power.cmd_on
    assert strategy.boot_mux is None and strategy.data_mux is None
    assert not strategy.shares_console


def test_the_one_uart_qemu_board_shares_its_console_with_the_test_shell():
    env = labgrid.Environment(str(FIXTURES / "qemu-board-1uart.yaml"))
    assert strategy_shares_console(env.config.get_targets()["main"]["drivers"])
    strategy = env.get_target("main").get_driver("KubeSoloStrategy", activate=False)
    assert isinstance(strategy.testshell, SharedConsoleDriver)
    assert strategy.testshell.console is strategy.console and strategy.shares_console
    assert strategy.board_args == "kubesolo.testshell=ttyS0"
    assert "--uarts 1" in strategy.power.cmd_on
    for name in ("qemu-board.yaml", "x86-board.example.yaml"):
        two = labgrid.Environment(str(FIXTURES / name)).config.get_targets()["main"]["drivers"]
        assert not strategy_shares_console(two), name


def test_env_errors_are_one_line(tmp_path):
    with pytest.raises(LabError, match=r"^labgrid env .*nope.yaml: no such file$"):
        open_environment(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [\n")
    with pytest.raises(LabError) as err:
        open_environment(str(bad))
    assert str(err.value).startswith(f"labgrid env {bad}: ")
    assert "\n" not in str(err.value)


# ---- what a board refuses ----
@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"base_cmdline": "console=ttyS0"}, "base_cmdline"),
        ({"data_disk": False}, "data_disk=False"),
        ({"nics": 2}, "nics"),
        ({"forwards": (80,)}, "forwards"),
        ({"data_disk_readonly": True}, "data_disk_readonly"),
    ],
)
def test_qemu_only_settings(settings, refused):
    assert [s.split(" ")[0] for s in qemu_only_settings(MachineConfig(**settings))] == [refused]


def test_every_default_setting_suits_a_board():
    config = MachineConfig(kernel_args="kubesolo.debug", label="kubesolo-shell", memory_mb=1024)
    assert qemu_only_settings(config) == []
    assert {q.setting.split("=")[0] for q in QEMU_ONLY} >= {"base_cmdline", "nics", "shares"}


class FakeBoard:
    role = "main"
    image = FakeImage()

    class strategy:
        mac = "52:54:00:9a:bc:de"
        board_args = "kubesolo.testshell=ttyS1"
        data_on_boot_medium = False


def test_a_disk_image_board_skips_a_test_with_a_data_disk_of_its_own(tmp_path):
    class DiskBoard(FakeBoard):
        class strategy(FakeBoard.strategy):
            data_on_boot_medium = True

    disk = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    with pytest.raises(WrongBoard, match="whose data partition is on its boot medium"):
        BoardTarget(DiskBoard(), MachineConfig(data_disk=disk), tmp_path)  # type: ignore[arg-type]
    BoardTarget(DiskBoard(), MachineConfig(), tmp_path)  # type: ignore[arg-type]


def test_a_board_target_refuses_qemu_only_settings_in_one_line(tmp_path):
    with pytest.raises(NeedsQemu, match=r"^a board cannot give base_cmdline .*qemu_only"):
        BoardTarget(FakeBoard(), MachineConfig(base_cmdline="x"), tmp_path)  # type: ignore[arg-type]


def test_a_test_needing_another_mac_is_told_the_boards(tmp_path):
    with pytest.raises(WrongBoard, match="52:54:00:ab:cd:ef; board main has 52:54:00:9a:bc:de"):
        BoardTarget(FakeBoard(), MachineConfig(macs=("52:54:00:ab:cd:ef",)), tmp_path)  # type: ignore[arg-type]
    target = BoardTarget(FakeBoard(), MachineConfig(macs=("52:54:00:9A:BC:DE",)), tmp_path)  # type: ignore[arg-type]
    assert not target.is_up


def test_the_boot_line_typed_at_the_prompt():
    args = ('kubesolo.flags="--debug"', "kubesolo.testshell=ttyS1")
    line = 'kubesolo kubesolo.testshell=ttyS1 kubesolo.flags="--debug"'
    assert boot_line("kubesolo", *args) == line
    assert boot_keys("isolinux", "kubesolo", *args) == line + "\r"
    assert boot_line("kubesolo-shell", "", "") == "kubesolo-shell"


def test_the_keys_typed_in_grubs_menu():
    """docs/architecture.md "Hardware in the loop": one Ctrl-N per place,
    then the editor, two lines down to `linux`, its end, the parameters, Ctrl-X."""
    keys = boot_keys("grub", "kubesolo-shell", "loglevel=4", "kubesolo.testshell=ttyS1")
    assert keys == "\x0e\x0ee\x0e\x0e\x05 kubesolo.testshell=ttyS1 loglevel=4\x18"
    assert boot_keys("grub", "kubesolo", "", "") == "\r"
    assert boot_keys("grub", "kubesolo-nopersist", "", "") == "\x0e" * 3 + "\r"


def test_grubs_editor_finds_linux_where_the_board_types():
    """GRUB's editor shows `setparams 'LABEL'` first, then the entry's lines:
    the menu's entries start with an empty line, then `linux`."""
    from harness.build import boot_menu

    text = boot_menu.grub_cfg(boot_menu.load(REPO / "build/boot-menu.toml"))
    for body in re.findall(r"^menuentry [^\n]*\{(.*?)^\}", text, re.M | re.S):
        lines = ["setparams 'LABEL'", *body.split("\n")]
        assert lines[guest.GRUB_EDITOR_LINUX_LINE].lstrip().startswith("linux ")


# ---- the QEMU board ----
def test_the_qemu_board_command_line_has_no_qmp_and_no_virtio_console():
    wiring = qemu_board.BoardWiring(Path("/b/boot.img"), Path("/b/data.qcow2"), Path("/b/serial"))
    cmd = qemu_board.board_command(wiring)
    line = " ".join(cmd)
    assert "-qmp" not in cmd and "virtserialport" not in line and "virtconsole" not in line
    serials = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-serial"]
    assert serials == [
        "unix:/b/serial/console.sock,server=on,wait=off",
        "unix:/b/serial/testshell.sock,server=on,wait=off",
    ]
    assert "tcp:" not in line  # no UART on a port another local user could reach
    assert "user,id=net0,restrict=on" in cmd
    assert "file=/b/boot.img,format=raw,if=none,id=bootstick" in cmd
    assert "file=/b/data.qcow2,format=qcow2,if=none,id=data0" in cmd


def test_the_one_uart_qemu_board_has_one_serial_port():
    wiring = qemu_board.BoardWiring(
        Path("/b/boot.img"), Path("/b/data.qcow2"), Path("/b/serial"), uarts=1
    )
    cmd = qemu_board.board_command(wiring)
    serials = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-serial"]
    assert serials == ["unix:/b/serial/console.sock,server=on,wait=off"]
    assert wiring.sockets == (Path("/b/serial/console.sock"),)


def test_listening_looks_for_the_socket_without_connecting(tmp_path):
    path = tmp_path / "console.sock"
    assert not qemu_board.listening(path)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert qemu_board.listening(path)


def test_power_on_without_media_is_one_line(tmp_path, capsys):
    wiring = qemu_board.BoardWiring(tmp_path / "boot.img", tmp_path / "data.qcow2", tmp_path)
    assert qemu_board.power_on(tmp_path, wiring, owner=1) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("qemu-board: no medium ") and "\n" not in err
    assert qemu_board.power_off(tmp_path) == 0  # off when off: nothing to do


# ---- the serial stream ----
def test_a_network_serial_port_as_the_shells_byte_stream():
    """labgrid's SerialDriver on a raw TCP port carries the test shell's framing."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    env_target = labgrid.Target("unit")
    NetworkSerialPort(env_target, name=None, host="127.0.0.1", port=port, protocol="raw")
    driver = SerialDriver(env_target, name=None)
    env_target.activate(driver)
    guest, _ = server.accept()
    stream = SerialStream(driver)
    shell = GuestShell(stream)
    guest.sendall(b"line noise\r\nKSH-READY boot-a\n")
    assert shell.wait_ready(1, timeout=5) == "boot-a"

    def answer():
        data = b""
        while b"KSH-END 1\n" not in data:
            data += guest.recv(4096)
        out = bytes(range(256)) * 100
        digest = hashlib.md5(out).hexdigest().encode()
        header = b"KSH-RESULT 1 0 %d 0 %s\n" % (len(out), digest)
        guest.sendall(header + _lines(out) + b"KSH-END 1\n")

    threading.Thread(target=answer).start()
    assert shell.run("cat", timeout=10).stdout == bytes(range(256)) * 100
    guest.close()  # the far end goes away: the stream ends
    assert stream.recv(10) == b""
    shell.close()
    server.close()


class ScriptedLine:
    """A serial line that delivers the given chunks, then ends; records writes."""

    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.written = b""
        self.go = threading.Event()

    def recv(self, size):
        self.go.wait(5)
        return self.chunks.pop(0) if self.chunks else b""

    def sendall(self, data):
        self.written += data

    def close(self):
        self.chunks = []


def test_a_shared_line_gives_both_parties_every_byte():
    line = ScriptedLine([b"[kubesolo-init] boot\nKSH-RE", b"ADY boot-z\nmore\n"])
    shared = SharedLine(line)
    console, shell_side = shared.reader(), shared.reader()
    line.go.set()
    got = {"console": b"", "shell": b""}
    for name, reader in (("console", console), ("shell", shell_side)):
        while chunk := reader.recv(7):
            got[name] += chunk
    assert got["console"] == got["shell"] == b"[kubesolo-init] boot\nKSH-READY boot-z\nmore\n"
    shell_side.sendall(b"KSH-REQ")
    assert line.written == b"KSH-REQ"


def test_a_board_sharing_its_console_refuses_typing_in_one_line(tmp_path):
    class SharedBoard(FakeBoard):
        class strategy(FakeBoard.strategy):
            shares_console = True

    target = BoardTarget(SharedBoard(), MachineConfig(), tmp_path)  # type: ignore[arg-type]
    with pytest.raises(
        SharedConsole, match=r"^typing 'exit\\r' on the console: on board main .*console_shell"
    ):
        target.send_console("exit\r")
    with pytest.raises(SharedConsole, match=r"^a console session: "):
        target.console_session()


# ---- media ----
def test_a_medium_holds_the_image_in_its_format(tmp_path):
    raw = tmp_path / "image.raw"
    raw.write_bytes(b"KUBESOLO" * 1000)
    medium = tmp_path / "stick" / "data.qcow2"
    write_file_medium(raw, medium, "qcow2")
    assert image_format(medium) == "qcow2"
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(medium), str(back)], check=True)
    assert back.read_bytes()[: len(raw.read_bytes())] == raw.read_bytes()
    with pytest.raises(Exception, match="no such file"):
        write_file_medium(tmp_path / "missing.img", medium, "raw")


def test_a_failing_power_command_is_its_last_output_line():
    from subprocess import CalledProcessError

    from harness.lab.strategy import _last_line

    err = CalledProcessError(
        1, ["qemu-board-power", "on"], output=b"noise\r\nqemu-board: no medium x\r\n"
    )
    assert _last_line(err) == "qemu-board: no medium x"
    assert _last_line(CalledProcessError(3, ["x"], output=b"")) == "exit status 3"


def test_the_qemu_boards_boot_medium_is_a_usb_stick_or_a_sata_disk():
    stick = qemu_board.BoardWiring(Path("/b/boot.img"), Path("/b/data.raw"), Path("/b/s"))
    assert "usb-storage,bus=xhci.0,drive=bootstick,bootindex=0" in qemu_board.board_command(stick)
    disk = qemu_board.BoardWiring(
        Path("/b/boot.img"), Path("/b/data.raw"), Path("/b/s"), boot_bus="sata"
    )
    line = qemu_board.board_command(disk)
    assert (
        "ide-hd,bus=ide.0,drive=bootstick,bootindex=0" in line and "qemu-xhci,id=xhci" not in line
    )
    assert "file=/b/data.raw,format=raw,if=none,id=data0" in line


SILENT_BOARD = """
imports: [harness.lab.media, harness.lab.strategy]
targets:
  main:
    resources:
      - NetworkSerialPort: {{name: console, host: 127.0.0.1, port: {console}, protocol: raw}}
      - NetworkSerialPort: {{name: testshell, host: 127.0.0.1, port: {shell}, protocol: raw}}
      - DiskImageFile: {{name: boot, path: {dir}/boot.img}}
      - DiskImageFile: {{name: data, path: {dir}/data.img}}
    drivers:
      - ExternalPowerDriver: {{cmd_on: "{on}", cmd_off: "true"}}
      - SerialDriver: {{name: console, bindings: {{port: console}}}}
      - SerialDriver: {{name: testshell, bindings: {{port: testshell}}}}
      - DiskImageDriver: {{name: boot, bindings: {{medium: boot}}}}
      - DiskImageDriver: {{name: data, bindings: {{medium: data}}}}
      - KubeSoloStrategy:
          bindings: {{console: console, testshell: testshell, boot_medium: boot,
                      data_medium: data}}
          connect_timeout: 1.0
          prompt_timeout: 1.0
"""


def silent_strategy(tmp_path, console_port: int, on: str = "true") -> KubeSoloStrategy:
    """A board whose power command does nothing and whose console is `console_port`."""
    env_file = tmp_path / "silent.yaml"
    text = SILENT_BOARD.format(console=console_port, shell=console_port, dir=tmp_path, on=on)
    env_file.write_text(text)
    strategy = (
        open_environment(str(env_file)).get_target().get_driver("KubeSoloStrategy", activate=False)
    )
    return strategy


def test_a_console_that_shows_nothing_is_one_line(tmp_path):
    from harness.vm.console import Console

    with socket.socket() as server:  # a serial server whose board never prints
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        strategy = silent_strategy(tmp_path, port)
        console = Console(tmp_path / "console.log")
        strategy.power_on(console)
        with pytest.raises(LabError) as err:
            strategy.type_boot_line(console, 0, "kubesolo", "")
        console.close()
    assert str(err.value) == (
        f"board main: the console (NetworkSerialPort 127.0.0.1:{port}) "
        "showed nothing within 1s of power-on: check its wiring, speed and the power"
    )


def test_a_serial_line_nobody_serves_is_one_line(tmp_path):
    from harness.vm.console import Console

    port = qemu_board_free_port()
    strategy = silent_strategy(tmp_path, port)
    with pytest.raises(LabError, match=r"^board main: the console line \(NetworkSerialPort ") as e:
        strategy.power_on(Console(tmp_path / "console.log"))
    assert "cannot be opened within 1s after power-on" in str(e.value)
    assert "\n" not in str(e.value)


def test_a_power_command_that_fails_is_one_line(tmp_path):
    from harness.vm.console import Console

    strategy = silent_strategy(tmp_path, 1, on="sh -c 'echo PDU outlet 3 refused >&2; exit 2'")
    with pytest.raises(LabError, match=r"^board main: power on failed: PDU outlet 3 refused$"):
        strategy.power_on(Console(tmp_path / "console.log"))


def qemu_board_free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_resumed_target_boots_as_far_as_its_last_boot_came():
    from harness import guest
    from harness.lab.board import last_milestone

    shell_stop = "[kubesolo-init] [OK] Stage 10-parse-cmdline.sh complete\r\n(kubesolo-shell) # "
    assert last_milestone(shell_stop) == guest.SHELL_PROMPT
    full = (
        "[kubesolo-init] [OK] Stage 90-kubesolo.sh complete\r\n[kubesolo-standin] accepted: x\r\n"
    )
    assert last_milestone(full) == guest.STANDIN_ACCEPTED
    partial = "[kubesolo-init] [OK] Stage 20-persistent-mount.sh complete\r\n[ 3.1] EXT4-fs"
    assert last_milestone(partial) == guest.stage_done("20-persistent-mount.sh")
    assert last_milestone("SeaBIOS\r\nboot: ") is None


def test_a_coordinator_out_of_reach_is_one_line(tmp_path):
    port = qemu_board_free_port()  # nobody listens there
    env_file = tmp_path / "remote.yaml"
    env_file.write_text(
        "imports: [harness.lab.strategy]\n"
        "targets:\n  main:\n    resources:\n      RemotePlace: {name: kubesolo-x86-1}\n"
    )
    env = open_environment(str(env_file), coordinator=f"127.0.0.1:{port}")
    with pytest.raises(LabError) as err:
        Board(env, FakeImage())  # type: ignore[arg-type]
    assert str(err.value) == "board main: Error: Could not connect to coordinator"
