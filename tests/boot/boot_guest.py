"""What the boot suites read from a guest (through the test shell) and from
its console, and the tables of docs/boot-flow.md they are checked against."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from harness import guest
from harness.boottime.timeline import arrival_time
from harness.disk import ext4_qcow2
from harness.vm.protocols import ShellAccess, Target

# QEMU user networking (slirp): the address its DHCP server hands out
GUEST_IP = "10.0.2.15"
TRACE_LINE = re.compile(r"^\++ \S", re.M)  # sh -x
OK_MARKER = re.compile(guest.stage_done())
ACCEPTED = re.compile(guest.STANDIN_ACCEPTED, re.M)


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    fstype: str
    options: str
    root: str = "/"  # the directory of the source file system that is mounted
    mount_id: int = 0
    parent_id: int = 0  # the kernel's rootfs is its own parent: it has no parent mount


def parse_sh_assignments(text: str) -> dict[str, str]:
    """NAME='value' lines (the format of save_var in functions.sh)."""
    values = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            words = shlex.split(value) or [""]
            values[name.strip()] = words[0]
    return values


def boot_env(vm: ShellAccess) -> dict[str, str]:
    """The variables stage 10 saved for the later stages."""
    return parse_sh_assignments(vm.succeed(f"cat {guest.BOOT_ENV}"))


def network_env(vm: ShellAccess) -> dict[str, str]:
    """What stage 50 recorded: NET_SOURCE, NET_IFACE, NET_ADDRESS, ..."""
    return parse_sh_assignments(vm.succeed(f"cat {guest.NETWORK_ENV}"))


def mounts(vm: ShellAccess) -> dict[str, Mount]:
    """The guest's mount table from /proc/self/mountinfo; the last mount on
    a path (the visible one) wins."""
    table: dict[str, Mount] = {}
    for line in vm.succeed("cat /proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        table[fields[4]] = Mount(
            source=tail[1],
            target=fields[4],
            fstype=tail[0],
            options=fields[5],
            root=fields[3],
            mount_id=int(fields[0]),
            parent_id=int(fields[1]),
        )
    return table


def standin_argv(vm: ShellAccess) -> list[str]:
    """The argv the KubeSolo stand-in received (it records it as init's child)."""
    return vm.succeed(f"cat {guest.STANDIN_ARGV}").splitlines()


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of a string flag in `--flag value` or `--flag=value` form."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def ipv4_addresses(vm: ShellAccess, iface: str) -> list[str]:
    """ADDRESS/PREFIX of every IPv4 address of an interface."""
    out = vm.succeed(f"ip -4 -o addr show dev {iface}")
    return re.findall(r"inet (\S+)", out)


def physical_ifaces(vm: ShellAccess) -> list[str]:
    """Interfaces in ifindex order, without the virtual kinds the spec
    skips (lo, docker, veth, br, cni)."""
    out = vm.succeed('for d in /sys/class/net/*; do echo "$(cat $d/ifindex) ${d##*/}"; done')
    pairs = sorted((int(i), name) for i, name in (line.split() for line in out.splitlines()))
    virtual = ("lo", "docker", "veth", "br", "cni")
    return [name for _, name in pairs if not name.startswith(virtual)]


def wait_for_kubesolo(vm: Target) -> None:
    """Stage 90 complete, the stand-in accepted its argv and, as the node's
    main process, recorded it."""
    vm.wait_for_boot()
    vm.wait_for_console(ACCEPTED.pattern, timeout=60)
    vm.wait_until_succeeds(f"test -s {guest.STANDIN_ARGV}", timeout=60)


def console_lines(vm: Target, since: int | None = None) -> list[str]:
    return vm.console_text(since).replace("\r", "").splitlines()


def console_arrivals(vm: Target, regex: str, since: int = 0) -> list[float]:
    """Host times (time.monotonic) at which each match of `regex` (multi-line)
    on the console after byte `since` began to arrive: the promised waits
    measured where a user sees them."""
    data, arrivals = vm.console.snapshot()
    pattern = re.compile(regex.encode(), re.M)
    return [arrival_time(m.start(), arrivals) for m in pattern.finditer(data, since)]


def whole_line(line: str) -> str:
    """A regex of exactly this console line."""
    return rf"^{re.escape(line)}\r?$"


def preseeded_data_disk(
    directory: Path,
    files: dict[str, str],
    size: str = "64M",
    executable: frozenset[str] = frozenset(),
) -> Path:
    """A qcow2 KSOLODATA ext4 disk whose file system already holds `files`
    (paths relative to the data partition's root), as a node configured on
    an earlier boot or by an installer would have it."""
    return ext4_qcow2(directory / "data.qcow2", size, files, executable=executable)
