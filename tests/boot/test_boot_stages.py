"""Each init stage's effects on a booted guest (docs/boot-flow.md "Stage Details",
stages 00-40 and 60-90; stage 50 is in test_boot_network.py)."""

from __future__ import annotations

import re

import promised as P
import pytest
from boot_guest import (
    TRACE_LINE,
    boot_env,
    flag_value,
    mounts,
    network_env,
    preseeded_data_disk,
    standin_argv,
    wait_for_kubesolo,
)
from boot_scenarios import (
    CLOUD_INIT_CUSTOM_PATH,
    CMDLINE_FLAGS,
    CONTAINERD_CONFIG,
    DEFAULT_VM_MAC,
    FLAGS_FILE,
    MISSING_MODULE,
    SAVED_HOSTNAME,
)

from harness import guest

pytestmark = pytest.mark.boot


def stage_window(text: str, stage: str) -> str:
    """The console text between a stage's start and its OK marker."""
    start = re.search(guest.stage_started(stage), text).start()
    end = re.compile(guest.stage_done(stage)).search(text, start).start()
    return text[start:end]


def words_of(config_text: str) -> list[str]:
    """The words of a config file, # comments removed."""
    return " ".join(line.split("#", 1)[0] for line in config_text.splitlines()).split()


# ---- Stage 00 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target", "fstype"),
    [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/tmp", "tmpfs"),
        ("/run", "tmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ],
)
def test_stage00_mounts_virtual_filesystems(scenario, target, fstype):
    """docs/boot-flow.md "Stage 00 — Early Mount": each virtual file system of the list
    is mounted on its path with the right type."""
    table = mounts(scenario("default"))
    assert target in table, f"{target} is not a mount point"
    assert table[target].fstype == fstype


def test_stage00_cgroup_v2_unified_hierarchy(scenario):
    """docs/boot-flow.md "Stage 00 — Early Mount": /sys/fs/cgroup is the cgroup v2 unified
    hierarchy (no v1 hierarchies), with the controllers KubeSolo needs
    (docs/kubesolo.md "Host requirements") available."""
    vm = scenario("default")
    table = mounts(vm)
    assert not [m.target for m in table.values() if m.fstype == "cgroup"]
    controllers = vm.succeed("cat /sys/fs/cgroup/cgroup.controllers").split()
    assert {"cpuset", "cpu", "io", "memory", "pids"} <= set(controllers)


# ---- Stage 10 ------------------------------------------------------------------------
def check_data(vm):
    """kubesolo.data: that device is mounted on /mnt/data."""
    device = vm.succeed(f"findfs {boot_env(vm)['KUBESOLO_DATA_DEV']}").strip()
    assert mounts(vm)[guest.DATA_MNT].source == device
    assert mounts(vm)[guest.DATA_MNT].fstype == "ext4"


def check_debug(vm):
    """kubesolo.debug: the stages after stage 10 run under set -x."""
    assert TRACE_LINE.search(stage_window(vm.console_text(), "20-persistent-mount.sh"))


def check_shell(vm):
    """kubesolo.shell: a shell prompt on the console right after stage 10."""
    text = vm.console_text()
    stage10 = re.search(guest.stage_done("10-parse-cmdline.sh"), text)
    assert stage10 and re.search(guest.SHELL_PROMPT, text[stage10.end() :])
    assert not re.search(guest.stage_started("20-persistent-mount.sh"), text)


def check_nopersist(vm):
    """kubesolo.nopersist: /mnt/data is tmpfs, no disk is mounted."""
    table = mounts(vm)
    assert table[guest.DATA_MNT].fstype == "tmpfs"
    assert not [m for m in table.values() if m.source.startswith("/dev/vd")]


def check_cloudinit(vm):
    """kubesolo.cloudinit: stage 50 took the network from that file."""
    assert network_env(vm)["NET_SOURCE"] == "cloud-init"


def check_flags(vm):
    """kubesolo.flags: the flags reach KubeSolo's command line."""
    argv = standin_argv(vm)
    flags = CMDLINE_FLAGS.split()
    assert any(argv[i : i + len(flags)] == flags for i in range(len(argv))), argv


@pytest.mark.parametrize(
    ("scenario_name", "variable", "expected", "effect"),
    [
        pytest.param(
            "default", "KUBESOLO_DATA_DEV", "LABEL=KSOLODATA", check_data, id="kubesolo.data=LABEL"
        ),
        pytest.param(
            "explicit-data",
            "KUBESOLO_DATA_DEV",
            "/dev/vda",
            check_data,
            id="kubesolo.data=/dev/vda",
            marks=pytest.mark.qemu_only("replaces the kernel command line (base_cmdline)"),
        ),
        pytest.param("debug", "KUBESOLO_DEBUG", "1", check_debug, id="kubesolo.debug"),
        pytest.param("shell", "KUBESOLO_SHELL", "1", check_shell, id="kubesolo.shell"),
        pytest.param(
            "nopersist", "KUBESOLO_NOPERSIST", "1", check_nopersist, id="kubesolo.nopersist"
        ),
        pytest.param(
            "cloudinit-path",
            "KUBESOLO_CLOUDINIT",
            CLOUD_INIT_CUSTOM_PATH,
            check_cloudinit,
            id="kubesolo.cloudinit",
        ),
        pytest.param(
            "configured", "KUBESOLO_EXTRA_FLAGS", CMDLINE_FLAGS, check_flags, id="kubesolo.flags"
        ),
    ],
)
def test_stage10_boot_parameter(scenario, scenario_name, variable, expected, effect):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": each boot parameter of the table sets
    its variable (saved for the later stages) and has its effect."""
    vm = scenario(scenario_name)
    assert boot_env(vm)[variable] == expected
    effect(vm)


def test_stage10_defaults_without_parameters(scenario):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": without kubesolo.debug/shell/
    nopersist/cloudinit/flags the variables keep their off values."""
    env = boot_env(scenario("default"))
    assert {k: env[k] for k in ("KUBESOLO_DEBUG", "KUBESOLO_SHELL", "KUBESOLO_NOPERSIST")} == {
        "KUBESOLO_DEBUG": "0",
        "KUBESOLO_SHELL": "0",
        "KUBESOLO_NOPERSIST": "0",
    }
    assert env["KUBESOLO_CLOUDINIT"] == env["KUBESOLO_EXTRA_FLAGS"] == ""


@pytest.mark.qemu_only("a kernel command line without kubesolo.data (base_cmdline)")
def test_stage10_finds_data_partition_by_label(scenario):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": with no kubesolo.data, the partition
    labelled KSOLODATA is found (blkid/findfs) and mounted."""
    vm = scenario("no-data-param")
    assert "kubesolo.data" not in vm.succeed("cat /proc/cmdline")
    device = vm.succeed("findfs LABEL=KSOLODATA").strip()
    env = boot_env(vm)
    assert env["KUBESOLO_DATA_DEV"] == device
    assert env["KUBESOLO_NOPERSIST"] == "0"
    assert mounts(vm)[guest.DATA_MNT].source == device
    vm.wait_for_console(r"Data partition found by label KSOLODATA", timeout=5)


@pytest.mark.qemu_only("a machine without a data disk")
def test_stage10_no_data_partition_means_ram_only(scenario):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": no kubesolo.data and no KSOLODATA
    partition: RAM-only mode, and the boot still reaches KubeSolo."""
    vm = scenario("no-data-disk")
    vm.fail("findfs LABEL=KSOLODATA")
    env = boot_env(vm)
    assert (env["KUBESOLO_DATA_DEV"], env["KUBESOLO_NOPERSIST"]) == ("", "1")
    assert mounts(vm)[guest.DATA_MNT].fstype == "tmpfs"
    vm.wait_for_console(r"\[WARN\] .*RAM-only mode", timeout=5)


# ---- Stage 20 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "target"), guest.BIND_MOUNTS, ids=[t for _, t in guest.BIND_MOUNTS]
)
def test_stage20_first_boot_creates_layout(scenario, source, target):
    """docs/boot-flow.md "Stage 20 — Persistent Mount": the first boot on a blank data
    partition creates the directory of each bind mount on it."""
    vm = scenario("default")
    vm.succeed(f"test -d {guest.DATA_MNT}/{source}")
    vm.wait_for_console(r"First boot on this data partition", timeout=5)


@pytest.mark.parametrize(
    ("source", "target"), guest.BIND_MOUNTS, ids=[t for _, t in guest.BIND_MOUNTS]
)
def test_stage20_bind_mounts(scenario, source, target):
    """docs/boot-flow.md "Stage 20 — Persistent Mount": each path of the table is a bind
    mount of its directory on the data partition (same file system, same
    directory inode)."""
    vm = scenario("default")
    table = mounts(vm)
    assert target in table, f"{target} is not a mount point"
    assert table[target].source == table[guest.DATA_MNT].source
    assert table[target].fstype == "ext4"
    assert table[target].root == f"/{source}"
    same = vm.succeed(f"stat -c %d:%i {target} {guest.DATA_MNT}/{source}").split()
    assert same[0] == same[1]


@pytest.mark.parametrize(
    ("source", "target"), guest.BIND_MOUNTS, ids=[t for _, t in guest.BIND_MOUNTS]
)
def test_stage20_ram_only_paths_are_tmpfs(scenario, source, target):
    """docs/boot-flow.md "Stage 20 — Persistent Mount": in RAM-only mode (kubesolo.
    nopersist) the same paths are backed by tmpfs and no disk is mounted."""
    vm = scenario("nopersist")
    table = mounts(vm)
    assert target in table, f"{target} is not a mount point"
    assert table[target].fstype == "tmpfs"
    assert not [m for m in table.values() if m.source.startswith("/dev/vd")]


@pytest.mark.qemu_only("hot-plugs the data disk through QMP")
def test_stage20_waits_for_a_late_data_disk(machine_factory):
    """docs/boot-flow.md "Stage 20 — Persistent Mount" step 1: a data disk that appears
    only while stage 20 waits (QMP hot-plug) is waited for, found by its
    label and mounted; the boot then completes."""
    vm = machine_factory(data_disk=False)
    vm.start()
    vm.wait_for_console(
        r"Waiting up to 30s for data device LABEL=KSOLODATA", timeout=vm.config.boot_timeout
    )
    vm.fail("findfs LABEL=KSOLODATA")
    cursor = vm.console_cursor()
    vm.hotplug_data_disk()
    vm.wait_for_console(rf"Mounted /dev/vd\w+ on {guest.DATA_MNT}", timeout=60, since=cursor)
    vm.wait_for_boot()
    device = vm.succeed("findfs LABEL=KSOLODATA").strip()
    table = mounts(vm)
    assert table[guest.DATA_MNT].source == device
    assert table[guest.KUBESOLO_PATH].source == device
    stage20 = next(s for s in vm.stage_timeline() if s.name == "20-persistent-mount.sh")
    assert stage20.ok and stage20.duration >= 1, stage20


# ---- Stage 30 ------------------------------------------------------------------------
@pytest.mark.parametrize("module", P.SPEC_STAGE30_MODULES)
def test_stage30_module_loaded(scenario, module):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": each module of the list is loaded
    (in /proc/modules) or built into the kernel (modules.builtin)."""
    vm = scenario("default")
    vm.succeed(
        f"grep -q '^{module} ' /proc/modules"
        f" || grep -q '/{module}.ko' /lib/modules/$(uname -r)/modules.builtin"
    )


def test_stage30_image_module_list_is_loaded(scenario):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": every module named in the image's
    /usr/lib/kubesolo-os/modules.list is loaded, and the list has the
    spec's modules, in its order."""
    vm = scenario("default")
    listed = words_of(vm.succeed("cat /usr/lib/kubesolo-os/modules.list"))
    assert tuple(listed) == P.SPEC_STAGE30_MODULES
    loaded = {line.split()[0] for line in vm.succeed("cat /proc/modules").splitlines()}
    builtin = vm.execute("cat /lib/modules/$(uname -r)/modules.builtin")[1]
    missing = [m for m in listed if m not in loaded and f"/{m}.ko" not in builtin]
    assert not missing


def test_stage30_modules_let_kube_proxy_reject(scenario):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": kube-proxy's `-j REJECT`
    (a service without endpoints) loads under the image's iptables-nft."""
    vm = scenario("default")
    vm.succeed(
        "iptables -N ksh-reject && iptables -A ksh-reject -p tcp --dport 1 -j REJECT && "
        "iptables -F ksh-reject && iptables -X ksh-reject"
    )


def test_stage30_module_that_cannot_load_is_a_warning(scenario):
    """docs/boot-flow.md "Stage 30 — Kernel Modules": a module that fails to load (here
    one from /etc/kubesolo/modules.list that no kernel has) is logged as a
    warning, and the boot goes on to KubeSolo."""
    vm = scenario("configured")
    window = stage_window(vm.console_text(), "30-kernel-modules.sh")
    assert re.search(rf"{guest.WARN_MARKER} .*{MISSING_MODULE}", window)
    vm.fail(f"grep -q '^{MISSING_MODULE} ' /proc/modules")
    assert re.search(guest.BOOT_MARKER, vm.console_text())


# ---- Stage 40 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.ip_forward", "1"),
        ("fs.inotify.max_user_watches", "524288"),
        ("net.netfilter.nf_conntrack_max", "131072"),
        ("vm.swappiness", "0"),
    ],
)
def test_stage40_sysctl(scenario, key, value):
    """docs/boot-flow.md "Stage 40 — Sysctl": each kernel parameter has its value."""
    vm = scenario("default")
    path = "/proc/sys/" + key.replace(".", "/")
    assert vm.succeed(f"cat {path}").strip() == value


# ---- Stage 60 ------------------------------------------------------------------------
def hostname_from_mac(mac: str) -> str:
    return "kubesolo-" + mac.replace(":", "").lower()[-6:]


def test_stage60_hostname_from_mac(scenario):
    """docs/boot-flow.md "Stage 60 — Hostname": with no saved hostname the name is
    kubesolo- and the last six hex digits of the primary interface's MAC
    (a MAC the harness set), and it is saved on the data partition."""
    vm = scenario("default")
    iface = network_env(vm)["NET_IFACE"]
    assert vm.succeed(f"cat /sys/class/net/{iface}/address").strip() == DEFAULT_VM_MAC
    expected = hostname_from_mac(DEFAULT_VM_MAC)
    assert vm.succeed("hostname").strip() == expected
    assert vm.succeed("cat /etc/kubesolo/hostname").strip() == expected


def test_stage60_saved_hostname_wins(scenario):
    """docs/boot-flow.md "Stage 60 — Hostname": a hostname saved on the data partition
    wins over the MAC-derived name."""
    vm = scenario("configured")
    iface = network_env(vm)["NET_IFACE"]
    mac = vm.succeed(f"cat /sys/class/net/{iface}/address").strip()
    assert vm.succeed("hostname").strip() == SAVED_HOSTNAME != hostname_from_mac(mac)


@pytest.mark.parametrize("scenario_name", ["default", "configured"])
def test_stage60_hostname_in_etc(scenario, scenario_name):
    """docs/boot-flow.md "Stage 60 — Hostname": the chosen name is written to
    /etc/hostname and added to /etc/hosts."""
    vm = scenario(scenario_name)
    name = vm.succeed("hostname").strip()
    assert vm.succeed("cat /etc/hostname").strip() == name
    hosts = [line.split() for line in vm.succeed("cat /etc/hosts").splitlines()]
    assert any(name in fields[1:] for fields in hosts if fields and not fields[0].startswith("#"))


# ---- Stage 70 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scenario_name", "warning"),
    [
        pytest.param("default", r"no network time source available", id="no-time-source"),
        pytest.param(
            "configured", r"no network time source answered", id="unreachable-time-server"
        ),
    ],
)
def test_stage70_clock_does_not_block(scenario, scenario_name, warning):
    """docs/boot-flow.md "Stage 70 — Clock": with no time source reachable (none offered
    by our DHCP, or configured servers that never answer and would cost
    about 9 s if waited for) stage 70 does not hold the boot up, logs a
    warning, and the boot goes on; the network attempt runs in the
    background."""
    vm = scenario(scenario_name)
    stage70 = next(s for s in vm.stage_timeline() if s.name == "70-clock.sh")
    assert stage70.ok
    assert stage70.duration < 3, f"stage 70 held the boot up for {stage70.duration:.1f}s"
    vm.wait_for_console(rf"{guest.WARN_MARKER} {warning}", timeout=60)


# ---- Stage 80 ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "directory", ["/run/containerd", "/var/lib/containerd", "/etc/cni/net.d", "/opt/cni/bin"]
)
def test_stage80_directories(scenario, directory):
    """docs/boot-flow.md "Stage 80 — Containerd": the containerd and CNI directories
    exist."""
    scenario("default").succeed(f"test -d {directory}")


CONTAINERD_DROPINS = "/etc/containerd/config.d"


@pytest.mark.parametrize(
    ("scenario_name", "dropins"), [("default", []), ("configured", ["50-node.toml"])]
)
def test_stage80_custom_containerd_config(scenario, scenario_name, dropins):
    """docs/boot-flow.md "Stage 80 — Containerd": a custom containerd config on the data
    partition (/etc/kubesolo/containerd/config.toml) is installed as the one drop-in
    /etc/containerd/config.d/50-node.toml, which KubeSolo imports; without one the
    directory is empty. /etc/containerd/config.toml, which KubeSolo never reads, is
    not written."""
    vm = scenario(scenario_name)
    assert vm.succeed(f"ls {CONTAINERD_DROPINS}").split() == dropins
    if dropins:
        custom = vm.succeed("cat /etc/kubesolo/containerd/config.toml")
        assert custom == CONTAINERD_CONFIG
        assert vm.succeed(f"cat {CONTAINERD_DROPINS}/50-node.toml") == custom
    vm.fail("test -e /etc/containerd/config.toml")


# ---- Stage 90 ------------------------------------------------------------------------
@pytest.mark.parametrize("scenario_name", ["default", "configured"])
def test_stage90_kubesolo_command_line(scenario, scenario_name):
    """docs/boot-flow.md "Stage 90 — KubeSolo" (with docs/kubesolo.md "Command line"):
    KubeSolo gets --path /var/lib/kubesolo, local storage enabled in its
    grammar (a boolean flag, no value), and the hostname as an extra SAN;
    the stand-in, which parses KubeSolo's grammar, accepted it."""
    vm = scenario(scenario_name)
    argv = standin_argv(vm)
    assert flag_value(argv, "--path") == guest.KUBESOLO_PATH
    assert "--no-local-storage" not in argv
    assert not [a for a in argv if a.startswith("--local-storage=")]
    if "--local-storage" in argv:
        i = argv.index("--local-storage")
        assert i + 1 == len(argv) or argv[i + 1].startswith("--"), argv
    sans = (flag_value(argv, "--apiserver-extra-sans") or "").split(",")
    assert vm.succeed("hostname").strip() in sans
    accepted = re.search(guest.STANDIN_ACCEPTED, vm.console_text(), re.M)
    assert accepted and accepted.group(1).split() == argv
    assert not re.search(r"^kubesolo: error:", vm.console_text(), re.M)


def test_stage90_extra_flags_from_file_and_parameter(scenario):
    """docs/boot-flow.md "Stage 90 — KubeSolo" step 4: the extra flags of the config file
    (/etc/kubesolo/extra-flags, comments ignored) and of kubesolo.flags= that
    the defaults do not set follow the defaults, the boot parameter's last."""
    argv = standin_argv(scenario("configured"))
    extra = words_of(FLAGS_FILE) + CMDLINE_FLAGS.split()
    assert argv[-len(extra) :] == extra, argv


# Flags the defaults also set, given again in the flags file and in the boot
# parameter, in both --flag value and --flag=value forms.
OVERRIDE_FILE_FLAGS = (
    f"--no-local-storage --path={guest.KUBESOLO_PATH}\n--apiserver-extra-sans node.example\n"
)
OVERRIDE_CMDLINE_FLAGS = "--local-storage --apiserver-extra-sans=10.0.2.15,node.example --debug"


def test_stage90_flags_given_again_are_merged(machine_factory, tmp_path):
    """docs/boot-flow.md "Stage 90 — KubeSolo": a flag the defaults set, given again in
    the flags file and again in kubesolo.flags=, is passed once (KubeSolo rejects a
    repeated flag, --no-X after --X included): the boot parameter wins over the
    file, the file over the defaults, and the SANs are joined with the hostname
    kept. The stand-in accepts the merged command line and the node boots."""
    disk = preseeded_data_disk(tmp_path, {"etc-kubesolo/extra-flags": OVERRIDE_FILE_FLAGS})
    vm = machine_factory(kernel_args=f'kubesolo.flags="{OVERRIDE_CMDLINE_FLAGS}"', data_disk=disk)
    vm.start()
    wait_for_kubesolo(vm)
    hostname = vm.succeed("hostname").strip()
    assert standin_argv(vm) == [
        f"--path={guest.KUBESOLO_PATH}",
        "--local-storage",
        "--apiserver-extra-sans",
        f"{hostname},node.example,10.0.2.15",
        "--debug",
    ]


def test_stage90_merges_booleans_of_the_flag_table(machine_factory, tmp_path):
    """docs/kubesolo.md "Command line" (the flag table is the grammar) and
    docs/boot-flow.md "Stage 90 — KubeSolo": --load-balancer in the flags file
    and kubesolo.flags="--no-load-balancer --pprof-server", booleans that only
    the image's flag table names, come out once each, --no-load-balancer in
    its place; the stand-in, parsing by the same table, accepts that argv."""
    disk = preseeded_data_disk(tmp_path, {"etc-kubesolo/extra-flags": "--load-balancer\n"})
    vm = machine_factory(
        kernel_args='kubesolo.flags="--no-load-balancer --pprof-server"', data_disk=disk
    )
    vm.start()
    wait_for_kubesolo(vm)
    hostname = vm.succeed("hostname").strip()
    argv = [
        "--path",
        guest.KUBESOLO_PATH,
        "--local-storage",
        "--apiserver-extra-sans",
        hostname,
        "--no-load-balancer",
        "--pprof-server",
    ]
    assert standin_argv(vm) == argv
    accepted = re.search(guest.STANDIN_ACCEPTED, vm.console_text(), re.M)
    assert accepted and accepted.group(1).split() == argv
    assert not re.search(r"^kubesolo: error:", vm.console_text(), re.M)


def test_stage90_kubesolo_is_the_main_process(scenario):
    """docs/boot-flow.md "Stage 90 — KubeSolo", "Supervision": KubeSolo runs as
    init's child, with the recorded command line, and PID 1 is init."""
    vm = scenario("default")
    main = vm.succeed(f"tr '\\0' '\\n' < {guest.KUBESOLO_PROC}/cmdline").splitlines()
    assert guest.KUBESOLO_BIN in main, main
    assert main[main.index(guest.KUBESOLO_BIN) + 1 :] == standin_argv(vm)
    assert vm.succeed(f"awk '/^PPid:/ {{ print $2 }}' {guest.KUBESOLO_PROC}/status") == "1\n"
    assert vm.succeed("tr '\\0' ' ' < /proc/1/cmdline").split()[-1] == "/sbin/init"
