"""Every number, list and rule of docs/boot-flow.md pinned on a booted guest:
each test states the promised value itself (tests/boot/promised.py) and
fails when the OS changes it (docs/promises.md "Promises" maps each promise
to its tests). Most read the shared scenario machines; two boot their own
to walk the failure paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import promised as P
import pytest
from boot_guest import (
    GUEST_IP,
    console_arrivals,
    console_lines,
    mounts,
    network_env,
    physical_ifaces,
    standin_argv,
    whole_line,
)
from boot_scenarios import (
    CMDLINE_FLAGS,
    DEFAULT_VM_MAC,
    FLAGS_FILE,
    INVALID_SAVED_HOSTNAME,
    MISSING_MODULE,
    NODE_MODULE,
    SAVED_HOSTNAME,
)

from harness import guest
from harness.artefact import sha256_file
from harness.build import cpio
from harness.tools import run_tool
from harness.vm.protocols import ShellAccess, Target

pytestmark = pytest.mark.boot

TRACE = re.compile(r"^\+ (.*?)\r?$", re.M)  # a command traced by sh -x


def init_lines(vm: Target, since: int | None = None) -> list[str]:
    """The console lines init printed (kernel messages left out)."""
    return [line for line in console_lines(vm, since) if line.startswith(P.SPEC_INIT_PREFIX)]


def lines_between(vm: Target, first: str, last: str, since: int | None = None) -> list[str]:
    """The init lines after the line `first` up to the line `last`."""
    lines = init_lines(vm, since)
    start = lines.index(first)
    return lines[start + 1 : lines.index(last, start)]


ALL_MARKERS = {line for s in P.SPEC_STAGES for line in (P.spec_started(s), P.spec_done(s))}


def stage_markers(vm: Target, since: int | None = None) -> list[str]:
    """The stages' promised start and OK lines, in console order."""
    return [line for line in console_lines(vm, since) if line in ALL_MARKERS]


def stage_lines(vm: Target, stage: str, since: int | None = None) -> list[str]:
    """The console lines between a stage's promised start and OK lines (its
    own lines, its sh -x trace, kernel messages)."""
    lines = console_lines(vm, since)
    start = lines.index(P.spec_started(stage))
    return lines[start + 1 : lines.index(P.spec_done(stage), start)]


def mountinfo(vm: ShellAccess) -> list[dict[str, object]]:
    """/proc/self/mountinfo in mount order: device, root, target, per-mount
    flags, type, source and file-system options."""
    rows = []
    for line in vm.succeed("cat /proc/self/mountinfo").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        rows.append(
            {
                "device": fields[2],
                "root": fields[3],
                "target": fields[4],
                "flags": set(fields[5].split(",")),
                "fstype": tail[0],
                "source": tail[1],
                "options": set(tail[2].split(",")),
            }
        )
    return rows


# ---- Overview and boot markers -------------------------------------------------------
def test_each_stage_prints_its_promised_markers_once_in_order(scenario):
    """docs/boot-flow.md "Overview" and "Boot markers": the console has, as
    whole lines, each stage's `starting` and `complete` line exactly once, in
    the promised order, then the success marker; no [ERROR] line."""
    vm = scenario("default")
    markers = stage_markers(vm)
    assert markers == [line for s in P.SPEC_STAGES for line in (P.spec_started(s), P.spec_done(s))]
    assert markers[-1] == P.SPEC_BOOT_MARKER
    assert not [line for line in init_lines(vm) if line.startswith(P.SPEC_ERROR_PREFIX)]


def test_each_stage_does_its_work_in_its_own_slot(scenario):
    """docs/boot-flow.md "Stage Details": each stage's promised line appears
    between that stage's start and OK lines, with the promised numbers
    (28 modules, the table's parameters, the MAC's hostname, KubeSolo's
    three default flags), so a swapped or skipped stage fails here."""
    vm = scenario("default")
    iface = physical_ifaces(vm)[0]
    hostname = P.spec_hostname(DEFAULT_VM_MAC)
    device = vm.succeed("findfs LABEL=KSOLODATA").strip()
    promised = {
        "10-parse-cmdline.sh": P.spec_parameters_line("LABEL=KSOLODATA"),
        "20-persistent-mount.sh": P.spec_mounted_line(device),
        "30-kernel-modules.sh": P.spec_modules_summary(len(P.SPEC_STAGE30_MODULES), 0),
        "40-sysctl.sh": P.SPEC_SYSCTL_LINE,
        "50-network.sh": P.spec_network_line(iface, GUEST_IP, "dhcp"),
        "70-clock.sh": P.SPEC_NO_TIME_SOURCE,
        "90-kubesolo.sh": P.spec_starting_line(P.spec_default_flags(hostname)),
    }
    for stage, line in promised.items():
        assert line in stage_lines(vm, stage), f"{stage} did not print {line!r}"
    stage00 = stage_lines(vm, P.SPEC_STAGES[0])
    (coldplug,) = [line for line in stage00 if line.startswith(P.SPEC_COLDPLUG_LINE)]
    assert re.fullmatch(re.escape(P.SPEC_COLDPLUG_LINE) + r"[1-9][0-9]* modules loaded", coldplug)
    assert vm.succeed("hostname").strip() == hostname
    started_60 = console_lines(vm).index(P.spec_started("60-hostname.sh"))
    assert console_lines(vm).index(P.spec_done("50-network.sh")) < started_60


# ---- Root file system ----------------------------------------------------------------
def test_root_tmpfs_is_90_percent_of_ram_mode_755(scenario):
    """docs/boot-flow.md "Root file system": `/` is a tmpfs of size=90% of
    RAM (the kernel's MemTotal, within 1%), and its directory has mode 0755."""
    vm = scenario("default")
    root = next(row for row in mountinfo(vm) if row["target"] == "/")
    (size_kb,) = [int(m[1]) for o in root["options"] if (m := re.fullmatch(r"size=(\d+)k", o))]
    mem_kb = int(vm.succeed("awk '/^MemTotal:/ { print $2 }' /proc/meminfo"))
    assert abs(size_kb - mem_kb * P.SPEC_ROOT_SIZE_PERCENT / 100) <= mem_kb / 100, (size_kb, mem_kb)
    assert vm.succeed("stat -c %a /").strip() == P.SPEC_ROOT_MODE


# ---- Stage 00 ------------------------------------------------------------------------
# what the kernel adds to every mount or every tmpfs whatever the stage asks
KERNEL_DEFAULTS = {"rw", "relatime", "inode64"}


@pytest.mark.parametrize(
    ("target", "fstype", "flags", "options", "mode"),
    P.SPEC_EARLY_MOUNTS,
    ids=[row[0] for row in P.SPEC_EARLY_MOUNTS],
)
def test_stage00_mount_has_exactly_the_promised_options(
    scenario, target, fstype, flags, options, mode
):
    """docs/boot-flow.md "Stage 00 — Early Mount": each virtual file system
    has exactly the table's type, flags, options and mode."""
    vm = scenario("default")
    rows = [row for row in mountinfo(vm) if row["target"] == target]
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["fstype"] == fstype
    assert row["flags"] - KERNEL_DEFAULTS == flags
    sized = {o for o in row["options"] if o.startswith(("size=", "nr_inodes="))}
    assert row["options"] - KERNEL_DEFAULTS - sized == options
    if mode:
        assert vm.succeed(f"stat -c %a {target}").strip() == mode


def test_stage00_delegates_the_promised_cgroup_controllers(scenario):
    """docs/boot-flow.md "Stage 00 — Early Mount": on the cgroup v2 unified
    hierarchy, the root's cgroup.subtree_control enables exactly the
    promised controllers (cpuset cpu io memory pids hugetlb), each one the
    kernel offers."""
    vm = scenario("default")
    offered = set(vm.succeed("cat /sys/fs/cgroup/cgroup.controllers").split())
    enabled = vm.succeed("cat /sys/fs/cgroup/cgroup.subtree_control").split()
    assert set(P.SPEC_CGROUP_CONTROLLERS) <= offered
    assert sorted(enabled) == sorted(P.SPEC_CGROUP_CONTROLLERS)
    assert not [row for row in mountinfo(vm) if row["fstype"] == "cgroup"]


# ---- Stage 10 ------------------------------------------------------------------------
@pytest.mark.qemu_only("a kernel command line without kubesolo.data (base_cmdline)")
@pytest.mark.parametrize("scenario_name", ["no-data-param", "no-data-disk"])
def test_stage10_label_lookup_does_not_wait(scenario, scenario_name):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": without kubesolo.data
    the KSOLODATA look-up happens once and never waits (only an explicit
    kubesolo.data gets stage 20's wait)."""
    text = scenario(scenario_name).console_text()
    assert "Waiting up to" not in text


# ---- Stage 20 ------------------------------------------------------------------------
@pytest.mark.parametrize(("scenario_name", "fstype"), [("default", "ext4"), ("nopersist", "tmpfs")])
def test_stage20_data_mounts_are_exactly_the_promised_table(scenario, scenario_name, fstype):
    """docs/boot-flow.md "Stage 20 — Persistent Mount": the data partition
    (ext4 with noatime, or a tmpfs of mode 0755 in RAM-only mode) on the
    data mount point, then the five bind mounts of the table, in its order,
    and nothing else from that file system."""
    rows = mountinfo(scenario(scenario_name))
    data = next(row for row in rows if row["target"] == P.SPEC_DATA_MNT)
    assert data["fstype"] == fstype
    if fstype == "ext4":
        assert "noatime" in data["flags"]
    else:
        assert "mode=755" in data["options"]
    from_data = [(row["root"], row["target"]) for row in rows if row["device"] == data["device"]]
    assert from_data == [("/", P.SPEC_DATA_MNT)] + [
        (f"/{source}", target) for source, target in P.SPEC_BIND_MOUNTS
    ]


def test_stage20_first_boot_layout_and_kubesolo_link(scenario):
    """docs/boot-flow.md "Stage 20 — Persistent Mount": the first boot writes
    `layout=1` to the layout marker, creates network/ and usr-local/bin/,
    and links KubeSolo's path in /usr/local/bin to the image's binary."""
    vm = scenario("default")
    marker, content = P.SPEC_LAYOUT_MARKER
    assert vm.succeed(f"cat {guest.DATA_MNT}/{marker}").strip() == content
    for directory in P.SPEC_LAYOUT_EXTRA_DIRS:
        vm.succeed(f"test -d {guest.DATA_MNT}/{directory}")
    link, target = P.SPEC_KUBESOLO_LINK
    assert vm.succeed(f"readlink {link}").strip() == target


# ---- Stage 30 ------------------------------------------------------------------------
def test_stage30_image_list_is_exactly_the_promised_modules(scenario):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": the image's
    modules.list is the table's 28 modules, in order; each is loaded; the
    stage reports 28 loaded, 0 failed."""
    vm = scenario("default")
    listed = vm.succeed("sed 's/#.*//' /usr/lib/kubesolo-os/modules.list").split()
    assert tuple(listed) == P.SPEC_STAGE30_MODULES
    loaded = {line.split()[0] for line in vm.succeed("cat /proc/modules").splitlines()}
    assert not set(P.SPEC_STAGE30_MODULES) - loaded
    summary = P.spec_modules_summary(len(P.SPEC_STAGE30_MODULES), 0)
    assert summary in stage_lines(vm, "30-kernel-modules.sh")


def test_stage30_loads_the_nodes_own_modules(scenario):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": a node's
    /etc/kubesolo/modules.list adds to the image's list: a module there that
    exists is loaded (it is not on a default node), one that does not is a
    warning; the stage reports 29 loaded, 1 failed."""
    configured, default = scenario("configured"), scenario("default")
    configured.succeed(f"grep -q '^{NODE_MODULE} ' /proc/modules")
    default.fail(f"grep -q '^{NODE_MODULE} ' /proc/modules")
    lines = stage_lines(configured, "30-kernel-modules.sh")
    assert P.spec_modules_summary(len(P.SPEC_STAGE30_MODULES) + 1, 1) in lines
    assert [
        line for line in lines if line.startswith(P.SPEC_WARN_PREFIX) and MISSING_MODULE in line
    ]


def test_boot_modules_are_the_promised_drivers_in_the_image(scenario):
    """docs/boot-flow.md "Stage 00 — Early Mount" (coldplug): the image
    carries exactly the table's drivers (its boot-modules.list), each one
    in its modules.dep or built into the kernel."""
    vm = scenario("default")
    listed = vm.succeed("cat /usr/lib/kubesolo-os/boot-modules.list").split()
    assert tuple(listed) == P.SPEC_BOOT_MODULES
    moddir = "/lib/modules/$(uname -r)"
    carried = vm.succeed(f"cut -d: -f1 {moddir}/modules.dep; cat {moddir}/modules.builtin").split()
    names = {path.rsplit("/", 1)[-1].split(".ko")[0].replace("-", "_") for path in carried}
    assert not set(P.SPEC_BOOT_MODULES) - names


def test_stage00_links_modprobe_where_the_kernel_asks_for_it(scenario, kubesolo_image):
    """docs/boot-flow.md "Stage 00 — Early Mount": the image carries no
    /sbin/modprobe; stage 00 links it to busybox, at the path the kernel
    asks, and the kernel's requests load modules through it from then on
    (stage 20's mount loaded ext4, a module)."""
    entries = {e.path for e in cpio.parse(kubesolo_image.initramfs.read_bytes())}
    assert "sbin/modprobe" not in entries and "sbin/insmod" in entries
    vm = scenario("default")
    assert vm.succeed("readlink /sbin/modprobe").strip() == "/bin/busybox"
    assert vm.succeed("cat /proc/sys/kernel/modprobe").strip() == "/sbin/modprobe"
    # nothing modprobes ext4 by name: the kernel asked for fs-ext4 at the mount
    assert vm.succeed("grep -c '^ext4 ' /proc/modules").strip() == "1"


def test_coldplug_reads_every_modalias_of_the_devices_present(scenario):
    """docs/boot-flow.md "Stage 00 — Early Mount" (coldplug): the modalias
    files the stage reads hold the same set as a walk of /sys/devices."""
    vm = scenario("default")
    walked = vm.succeed("find /sys/devices -name modalias -type f -exec cat {} + | sort -u")
    read = vm.succeed(f". {guest.INIT_FUNCTIONS}; read_modaliases; echo $DEVICE_MODALIASES")
    assert sorted(set(read.split())) == walked.splitlines()
    assert any(alias.startswith("pci:") for alias in read.split())


# ---- Stage 40 ------------------------------------------------------------------------
def test_stage40_image_file_is_exactly_the_promised_sysctls(scenario):
    """docs/boot-flow.md "Stage 40 — Sysctl": the guest's k8s.conf holds the
    five keys and values and nothing else, and the kernel has each value."""
    vm = scenario("default")
    pairs = {}
    for line in vm.succeed("sed 's/#.*//' /etc/sysctl.d/k8s.conf").splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    assert pairs == P.SPEC_SYSCTLS
    for key, value in P.SPEC_SYSCTLS.items():
        assert vm.succeed(f"cat /proc/sys/{key.replace('.', '/')}").strip() == value, key


# ---- Stage 50 ------------------------------------------------------------------------
def test_stage50_dhcp_gives_up_as_promised(scenario):
    """docs/boot-flow.md "Stage 50 — Network": DHCP is `udhcpc -n -q -t 5
    -T 2` on the primary interface (five discovers, 2 s apart, no lease:
    give up), as the kubesolo.debug trace of stage 50 shows."""
    vm = scenario("debug")
    iface = network_env(vm)["NET_IFACE"]
    traced = TRACE.findall("\n".join(stage_lines(vm, "50-network.sh")))
    udhcpc = [cmd for cmd in traced if cmd.startswith("udhcpc ")]
    assert udhcpc and all(f"-i {iface} {P.SPEC_DHCP_ARGS} " in cmd for cmd in udhcpc), traced


# ---- Stage 60 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario_name", "hostname"),
    [
        ("default", P.spec_hostname(DEFAULT_VM_MAC)),
        ("configured", SAVED_HOSTNAME),
    ],
)
def test_stage60_etc_hosts_is_the_image_file_and_one_line(scenario, scenario_name, hostname):
    """docs/boot-flow.md "Stage 60 — Hostname": /etc/hosts is the image's two
    lines and `127.0.1.1 NAME`, once; /etc/hostname holds the name."""
    vm = scenario(scenario_name)
    assert vm.succeed("hostname").strip() == hostname
    assert vm.succeed("cat /etc/hostname").strip() == hostname
    hosts = tuple(vm.succeed("cat /etc/hosts").splitlines())
    assert hosts == (*P.SPEC_ETC_HOSTS, P.spec_hosts_line(hostname))


@pytest.mark.qemu_only("a machine without a NIC and without a data disk")
def test_stage60_without_a_nic_the_name_is_kubesolo_000000(scenario):
    """docs/boot-flow.md "Stage 60 — Hostname": a node with no network
    interface is named kubesolo-000000, and the name is saved."""
    vm = scenario("no-data-disk")
    assert physical_ifaces(vm) == []
    assert vm.succeed("hostname").strip() == P.SPEC_HOSTNAME_WITHOUT_NIC
    assert vm.succeed("cat /etc/kubesolo/hostname").strip() == P.SPEC_HOSTNAME_WITHOUT_NIC


@pytest.mark.qemu_only("its scenario boots without kubesolo.data (base_cmdline)")
def test_stage60_invalid_saved_hostname_is_ignored(scenario):
    """docs/boot-flow.md "Stage 60 — Hostname": a saved hostname that is not
    a lowercase RFC 1123 label is ignored with a warning; the node takes the
    MAC's name and saves it in its place."""
    vm = scenario("no-data-param")
    mac = vm.succeed(f"cat /sys/class/net/{physical_ifaces(vm)[0]}/address").strip()
    expected = P.spec_hostname(mac)
    assert vm.succeed("hostname").strip() == expected
    assert vm.succeed("cat /etc/kubesolo/hostname").strip() == expected
    warnings = [
        line
        for line in stage_lines(vm, "60-hostname.sh")
        if line.startswith(P.SPEC_WARN_PREFIX) and INVALID_SAVED_HOSTNAME in line
    ]
    assert warnings, "no warning names the invalid saved hostname"


# ---- Stage 80 ------------------------------------------------------------------------
def test_stage80_creates_exactly_the_promised_directories(scenario):
    """docs/boot-flow.md "Stage 80 — Containerd": stage 80 itself creates
    (its kubesolo.debug trace shows `mkdir -p` of) exactly the promised
    directories, and each exists on a default node."""
    traced = TRACE.findall("\n".join(stage_lines(scenario("debug"), "80-containerd.sh")))
    made = [path for cmd in traced if cmd.startswith("mkdir -p ") for path in cmd.split()[2:]]
    assert sorted(made) == sorted(P.SPEC_STAGE80_DIRS), traced
    default = scenario("default")
    for directory in P.SPEC_STAGE80_DIRS:
        default.succeed(f"test -d {directory}")


# ---- Stage 90 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario_name", "hostname", "extra"),
    [
        ("default", P.spec_hostname(DEFAULT_VM_MAC), []),
        (
            "configured",
            SAVED_HOSTNAME,
            # the flags file's words (comments removed), then kubesolo.flags=
            [w for line in FLAGS_FILE.splitlines() for w in line.split("#")[0].split()]
            + CMDLINE_FLAGS.split(),
        ),
    ],
)
def test_stage90_command_line_is_exactly_the_promised_one(scenario, scenario_name, hostname, extra):
    """docs/boot-flow.md "Stage 90 — KubeSolo": KubeSolo's argv is the three
    defaults (the hostname as SAN), then the flags file's, then the boot
    parameter's (none of which repeats a default), and the stage logs it."""
    vm = scenario(scenario_name)
    argv = P.spec_default_flags(hostname) + extra
    assert standin_argv(vm) == argv
    assert P.spec_starting_line(argv) in stage_lines(vm, "90-kubesolo.sh")


def test_stage90_kubesolo_runs_with_no_color(scenario):
    """docs/boot-flow.md "Stage 90 — KubeSolo": KubeSolo runs with NO_COLOR=1 in
    its environment."""
    command = f"tr '\\0' '\\n' < {guest.KUBESOLO_PROC}/environ"
    environ = scenario("default").succeed(command).splitlines()
    assert P.SPEC_KUBESOLO_ENV in environ


# ---- Failure handling: the data disk -------------------------------------------------
DATA_LINK = "/dev/ksolo-data"  # kubesolo.data names it; the test makes it point at a disk


def blank_disk(path: Path) -> Path:
    """A qcow2 disk with no file system at all (all zeros), smaller than the
    128 MiB offset where stage 20 looks for a 4 KiB-block backup superblock:
    probing past a disk's end must not stall the boot."""
    run_tool(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"])
    return path


def exit_console_shell(vm: Target, prompt: str, timeout: float = 60) -> int:
    """Wait for a console shell's prompt, type `exit`; the cursor before it."""
    vm.wait_for_console(prompt, timeout=timeout)
    cursor = vm.console_cursor()
    vm.send_console("exit\r")
    return cursor


@pytest.mark.long
@pytest.mark.qemu_only("hot-plugs the data disk through QMP and reads a disk file back")
def test_missing_then_unformatted_data_disk_is_never_formatted(machine_factory, tmp_path):
    """docs/boot-flow.md "Stage 20 — Persistent Mount" and "Failure
    Handling": a data device that never appears is waited for 30 s (the
    console says 30s, and the error arrives no earlier than 30 s after the
    waiting line), then stage 20 fails with the promised line and the
    emergency shell opens; its `exit` retries from stage 00. Pointed at a
    blank disk, stage 20 refuses it with the promised mkfs hint, without
    waiting. With a KSOLODATA disk hot-plugged the next retry boots. The
    blank disk is never written."""
    blank = blank_disk(tmp_path / "blank.qcow2")
    before = sha256_file(blank)
    vm = machine_factory(
        base_cmdline=f"console=ttyS0,115200n8 kubesolo.data={DATA_LINK}",
        data_disk=blank,
        allow_failures=frozenset({"stage-error"}),
    )
    vm.start()
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=vm.config.boot_timeout + 60)
    failed = P.spec_failed("20-persistent-mount.sh")
    waiting, missing = P.spec_waiting_line(DATA_LINK), P.spec_missing_device_error(DATA_LINK)
    assert lines_between(vm, waiting, failed) == [missing]
    (waited_from,) = console_arrivals(vm, whole_line(waiting))
    (waited_to,) = console_arrivals(vm, whole_line(missing))
    assert waited_to - waited_from >= P.SPEC_DATA_WAIT_SECONDS, waited_to - waited_from
    lines = init_lines(vm)
    assert lines[lines.index(failed) + 1 : lines.index(failed) + 3] == list(P.SPEC_EMERGENCY_LINES)
    assert P.spec_started("30-kernel-modules.sh") not in lines

    # the device appears, but holds no file system: refused, not formatted
    vm.succeed(f"ln -s /dev/vda {DATA_LINK}")
    retry = exit_console_shell(vm, guest.EMERGENCY_PROMPT)
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=vm.config.boot_timeout, since=retry)
    lines = init_lines(vm, retry)
    assert lines[lines.index(P.SPEC_RETRY_LINE) + 1] == P.spec_started(P.SPEC_STAGES[0])
    assert P.spec_not_ext4_error(DATA_LINK) in lines_between(
        vm, P.spec_started("20-persistent-mount.sh"), failed, retry
    )
    assert waiting not in lines

    # a KSOLODATA disk arrives; the next retry mounts it and boots
    vm.hotplug_data_disk()
    vm.wait_until_succeeds("test -b /dev/vdb", timeout=60)
    vm.succeed(f"ln -sfn /dev/vdb {DATA_LINK}")
    retry = exit_console_shell(vm, guest.EMERGENCY_PROMPT)
    vm.wait_for_console(guest.BOOT_MARKER, timeout=vm.config.boot_timeout, since=retry)
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"
    vm.power_off()
    assert sha256_file(blank) == before, "the blank disk was written to"


# ---- Failure handling: failing stages, the retry, kubesolo.shell ---------------------
SYSCTL_FILE = "/etc/sysctl.d/k8s.conf"
REJECTED_SYSCTL = ("net.ksolo.no_such_key", "1")  # a key no kernel has
IMAGE_BIN = P.SPEC_KUBESOLO_LINK[1]


@dataclass(frozen=True)
class Fault:
    """A way to make one stage fail: the promised error line it prints, and
    the test-shell commands that make and undo the fault."""

    stage: str
    error: str
    make: str
    undo: str


FAULTS = (
    Fault(
        "40-sysctl.sh",
        P.spec_sysctl_error(*REJECTED_SYSCTL),
        "echo '{} = {}' >> {}".format(*REJECTED_SYSCTL, SYSCTL_FILE),
        f"sed -i '$d' {SYSCTL_FILE}",
    ),
    Fault(
        "90-kubesolo.sh",
        P.SPEC_BINARY_MISSING,
        f"mv {IMAGE_BIN} {IMAGE_BIN}.away",
        f"mv {IMAGE_BIN}.away {IMAGE_BIN}",
    ),
    Fault(
        "90-kubesolo.sh",
        P.SPEC_BINARY_NOT_EXECUTABLE,
        f"chmod -x {IMAGE_BIN}",
        f"chmod +x {IMAGE_BIN}",
    ),
)


@pytest.mark.console_shell
def test_failing_stages_and_retries_rerun_every_stage(machine_factory):
    """docs/boot-flow.md "Failure Handling", "Stage 40 — Sysctl" and "Stage
    90 — KubeSolo": with kubesolo.shell the boot stops after stage 10 with
    the promised hint; `exit` continues. A sysctl key the kernel rejects
    fails stage 40, a missing KubeSolo and then one that is not executable
    fail stage 90, each with its promised line, no later stage, and the
    emergency shell's promised lines; each `exit` reruns the whole sequence
    from stage 00 (kubesolo.shell included). Every stage is safe to run
    again: the mounts are not doubled, /etc/hosts keeps one line for the
    name, the test shell is not started again. Fixed, the retry boots
    KubeSolo with its default flags."""
    vm = machine_factory(kernel_args="kubesolo.shell", allow_failures=frozenset({"stage-error"}))
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)
    lines = init_lines(vm)
    assert lines[lines.index(P.spec_done("10-parse-cmdline.sh")) + 1] == P.SPEC_SHELL_HINT
    vm.succeed(FAULTS[0].make)
    cursor = exit_console_shell(vm, guest.SHELL_PROMPT)

    for fault, following in zip(FAULTS, (*FAULTS[1:], None), strict=True):
        vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=vm.config.boot_timeout, since=cursor)
        failed = P.spec_failed(fault.stage)
        assert lines_between(vm, P.spec_started(fault.stage), failed, cursor) == [fault.error]
        lines = init_lines(vm, cursor)
        after = lines.index(failed) + 1
        assert lines[after : after + 2] == list(P.SPEC_EMERGENCY_LINES)
        later = P.SPEC_STAGES[P.SPEC_STAGES.index(fault.stage) + 1 :]
        assert not [s for s in later if P.spec_started(s) in lines], fault
        vm.succeed(fault.undo)
        if following:
            vm.succeed(following.make)
        cursor = exit_console_shell(vm, guest.EMERGENCY_PROMPT)
        vm.wait_for_console(whole_line(P.SPEC_RETRY_LINE), timeout=30, since=cursor)
        # the retry starts over from stage 00 and stops in the kubesolo.shell again
        vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout, since=cursor)
        assert stage_markers(vm, cursor) == [
            line for s in P.SPEC_STAGES[:2] for line in (P.spec_started(s), P.spec_done(s))
        ]
        cursor = exit_console_shell(vm, guest.SHELL_PROMPT)

    vm.wait_for_console(guest.BOOT_MARKER, timeout=vm.config.boot_timeout, since=cursor)
    wait_for_kubesolo_after(vm)
    hostname = vm.succeed("hostname").strip()
    assert standin_argv(vm) == P.spec_default_flags(hostname)
    markers = stage_markers(vm)
    for stage in P.SPEC_STAGES:
        completed = 1 + sum(1 for fault in FAULTS if stage < fault.stage)
        assert markers.count(P.spec_done(stage)) == completed, stage
    assert vm.console_text().count("Test shell started") == 1
    targets = [row["target"] for row in mountinfo(vm)]
    assert len(targets) == len(set(targets)), targets
    hosts = vm.succeed("cat /etc/hosts").splitlines()
    assert hosts == [*P.SPEC_ETC_HOSTS, P.spec_hosts_line(hostname)]


def wait_for_kubesolo_after(vm: ShellAccess) -> None:
    """The stand-in recorded its argv (after a retried boot, whose console
    holds earlier [ERROR] lines, so wait_for_kubesolo's checks do not fit)."""
    vm.wait_until_succeeds(f"test -s {guest.STANDIN_ARGV}", timeout=60)
