"""The numbers, lists and rules of the boot flow as docs/boot-flow.md promises
them, written out here once so that the tests that pin them state the values
themselves and never read them from the OS or from the harness
(docs/promises.md "Promises" lists each promise with its tests).

A test that compared the guest with a value taken from the implementation
would pass whatever the value was; these literals make a changed value fail."""

from __future__ import annotations

# ---- Bootloader ----------------------------------------------------------------------
SPEC_DEFAULT_LABEL = "kubesolo"
SPEC_TIMEOUT_TENTHS = 30  # isolinux counts in tenths of a second
SPEC_TIMEOUT_SECONDS = SPEC_TIMEOUT_TENTHS / 10
_BASE_APPEND = "console=tty0 console=ttyS0,115200n8 kubesolo.data=LABEL=KSOLODATA"
SPEC_APPEND = {
    "kubesolo": _BASE_APPEND,
    "kubesolo-debug": f"{_BASE_APPEND} kubesolo.debug loglevel=7",
    "kubesolo-shell": f"{_BASE_APPEND} kubesolo.shell",
    "kubesolo-nopersist": f"{_BASE_APPEND} kubesolo.nopersist",
}
SPEC_LABELS = tuple(SPEC_APPEND)
SPEC_KERNEL = "/boot/vmlinuz"
SPEC_INITRD = "/boot/initramfs"
# the menu's other directives: serial port 0 at 115200 baud, the screen, a prompt
SPEC_MENU_DIRECTIVES = {"SERIAL": "0 115200", "CONSOLE": "1", "PROMPT": "1"}
SPEC_SAY_NAMES = (*SPEC_APPEND, "(default)")  # the SAY line lists the labels


def isolinux_directives(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """(global directives, label -> its directives) of an isolinux.cfg: the
    form in which the menu's values are promised."""
    top: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = {}
    current = top
    for line in text.splitlines():
        words = line.split(None, 1)
        if not words or words[0].startswith("#"):
            continue
        key, value = words[0].upper(), (words[1].strip() if len(words) > 1 else "")
        if key == "LABEL":
            current = labels.setdefault(value, {})
        else:
            current[key] = value
    return top, labels


# ---- Overview: the stages in the order init runs them ----------------------------------
SPEC_STAGES = (
    "00-early-mount.sh",
    "10-parse-cmdline.sh",
    "20-persistent-mount.sh",
    "30-kernel-modules.sh",
    "40-sysctl.sh",
    "50-network.sh",
    "60-hostname.sh",
    "70-clock.sh",
    "80-containerd.sh",
    "90-kubesolo.sh",
)

# ---- Root file system ----------------------------------------------------------------
SPEC_ROOT_SIZE_PERCENT = 90
SPEC_ROOT_MODE = "755"

# ---- Stage 00: (mount point, type, per-mount flags, file-system options, mode) ---------
# Flags and options beyond the kernel's defaults (rw, relatime, inode64, a
# devtmpfs's size and inode count); a tmpfs with mode 1777 (the kernel's
# default) shows it only in the directory's mode.
SPEC_EARLY_MOUNTS = (
    ("/proc", "proc", {"nosuid", "nodev", "noexec"}, set(), None),
    ("/sys", "sysfs", {"nosuid", "nodev", "noexec"}, set(), None),
    ("/dev", "devtmpfs", {"nosuid"}, {"mode=755"}, "755"),
    ("/tmp", "tmpfs", {"nosuid", "nodev"}, set(), "1777"),
    ("/run", "tmpfs", {"nosuid", "nodev"}, {"mode=755"}, "755"),
    ("/dev/pts", "devpts", set(), {"gid=5", "mode=620", "ptmxmode=666"}, None),
    ("/dev/shm", "tmpfs", {"nosuid", "nodev"}, set(), "1777"),
    ("/sys/fs/cgroup", "cgroup2", set(), {"nsdelegate"}, None),
)
# the controllers stage 00 enables in the root's cgroup.subtree_control
SPEC_CGROUP_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids", "hugetlb")
SPEC_COLDPLUG_LINE = "[kubesolo-init] [INFO] Coldplug done: "  # + "N modules loaded"


# ---- Stage 10 ------------------------------------------------------------------------
def spec_parameters_line(data: str, debug: int = 0, shell: int = 0, nopersist: int = 0) -> str:
    """Stage 10's summary line (cloudinit and flags not given)."""
    return (
        f"[kubesolo-init] [INFO] data={data} debug={debug} shell={shell}"
        f" nopersist={nopersist} cloudinit=none flags=none"
    )


# ---- Stage 20 ------------------------------------------------------------------------
SPEC_DATA_MNT = "/mnt/data"
SPEC_DATA_WAIT_SECONDS = 30
# (directory on the data partition, mount point), in the order they are made
SPEC_BIND_MOUNTS = (
    ("kubesolo", "/var/lib/kubesolo"),
    ("containerd", "/var/lib/containerd"),
    ("etc-kubesolo", "/etc/kubesolo"),
    ("log", "/var/log"),
    ("usr-local", "/usr/local"),
)
SPEC_LAYOUT_EXTRA_DIRS = ("network", "usr-local/bin")
SPEC_LAYOUT_MARKER = (".kubesolo-os", "layout=1")
SPEC_KUBESOLO_LINK = ("/usr/local/bin/kubesolo", "/usr/lib/kubesolo-os/bin/kubesolo")


def spec_waiting_line(spec: str) -> str:
    return f"[kubesolo-init] [INFO] Waiting up to 30s for data device {spec}"


def spec_mounted_line(dev: str) -> str:
    return f"[kubesolo-init] [INFO] Mounted {dev} on /mnt/data"


def spec_missing_device_error(spec: str) -> str:
    return (
        f"[kubesolo-init] [ERROR] data device {spec} did not appear within 30s: "
        "attach a disk labelled KSOLODATA or boot with kubesolo.nopersist"
    )


def spec_not_ext4_error(dev: str) -> str:
    return (
        f"[kubesolo-init] [ERROR] cannot mount {dev} as ext4 on /mnt/data: not an ext4 file"
        " system? (KubeSolo OS never formats disks; make one with:"
        f" mkfs.ext4 -L KSOLODATA {dev})"
    )


# ---- Stage 30 ------------------------------------------------------------------------
SPEC_STAGE30_MODULES = (
    # pod networking
    "br_netfilter",
    "bridge",
    "veth",
    "vxlan",
    # service routing
    "ip_tables",
    "iptable_nat",
    "nf_nat",
    "nf_conntrack",
    # container storage
    "overlay",
    # IPVS
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_sh",
    # what KubeSolo modprobes itself
    "xt_MASQUERADE",
    "xt_conntrack",
    "xt_comment",
    "xt_addrtype",
    "xt_multiport",
    "xt_nat",
    "xt_recent",
    "xt_set",
    "xt_statistic",
    "xt_nfacct",
    # iptables' nf_tables back end
    "nf_tables",
    "nft_compat",
    "nft_chain_nat",
    # packet marks
    "xt_mark",
    # kube-proxy's REJECT under iptables-nft
    "ipt_REJECT",
)
SPEC_BOOT_MODULES = (
    # virtio
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_console",
    "virtio_scsi",
    "virtio_rng",
    # disks and file systems
    "ext4",
    "sd_mod",
    "sr_mod",
    "ahci",
    "ata_piix",
    "nvme",
    "usb_storage",
    "xhci_pci",
    "ehci_pci",
    "uas",
    # NICs
    "e1000",
    "e1000e",
    "igb",
    "r8169",
    # 9p shares
    "9p",
    "9pnet_virtio",
    # the power button
    "button",
    "evdev",
)


def spec_modules_summary(loaded: int, failed: int) -> str:
    return f"[kubesolo-init] [INFO] Kernel modules: {loaded} loaded, {failed} failed"


# ---- Stage 40 ------------------------------------------------------------------------
SPEC_SYSCTLS = {
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.ipv4.ip_forward": "1",
    "fs.inotify.max_user_watches": "524288",
    "net.netfilter.nf_conntrack_max": "131072",
    "vm.swappiness": "0",
}
SPEC_SYSCTL_LINE = "[kubesolo-init] [INFO] Applied /etc/sysctl.d/k8s.conf"


def spec_sysctl_error(key: str, value: str) -> str:
    """A key the kernel rejects fails stage 40 with this line."""
    return f"[kubesolo-init] [ERROR] sysctl {key}={value} failed"


# ---- Stage 50 ------------------------------------------------------------------------
SPEC_DHCP_ARGS = "-n -q -t 5 -T 2"  # five discovers, 2 s apart, no lease: give up


def spec_network_line(iface: str, address: str, source: str) -> str:
    return f"[kubesolo-init] [INFO] Network: {iface} {address} (from {source})"


SPEC_VIRTUAL_IFACE_PREFIXES = (
    "docker",
    "veth",
    "br",
    "cni",
    "flannel",
    "vxlan",
    "tunl",
    "dummy",
    "kube-ipvs",
    "sit",
    "ip6tnl",
)

# ---- Stage 60 ------------------------------------------------------------------------
SPEC_HOSTNAME_PREFIX = "kubesolo-"
SPEC_HOSTNAME_WITHOUT_NIC = "kubesolo-000000"
SPEC_ETC_HOSTS = ("127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback")


def spec_hostname(mac: str) -> str:
    """kubesolo- and the MAC's last six hex digits, lowercase."""
    return SPEC_HOSTNAME_PREFIX + mac.replace(":", "").lower()[-6:]


def spec_hosts_line(name: str) -> str:
    return f"127.0.1.1 {name}"


# ---- Stage 70 ------------------------------------------------------------------------
SPEC_NO_TIME_SOURCE = "[kubesolo-init] [WARN] no network time source available: clock left as is"

# ---- Stage 80 ------------------------------------------------------------------------
SPEC_STAGE80_DIRS = (
    "/run/containerd",
    "/var/lib/containerd",
    "/etc/cni/net.d",
    "/opt/cni/bin",
    "/etc/containerd/config.d",
)
SPEC_CONTAINERD_DROPIN = "/etc/containerd/config.d/50-node.toml"

# ---- Stage 90 ------------------------------------------------------------------------
SPEC_KUBESOLO_BIN = "/usr/local/bin/kubesolo"


def spec_default_flags(hostname: str) -> list[str]:
    return ["--path", "/var/lib/kubesolo", "--local-storage", "--apiserver-extra-sans", hostname]


def spec_starting_line(argv: list[str]) -> str:
    return f"[kubesolo-init] [INFO] Starting KubeSolo: {SPEC_KUBESOLO_BIN} {' '.join(argv)}"


SPEC_KUBESOLO_ENV = "NO_COLOR=1"
SPEC_BINARY_MISSING = (
    "[kubesolo-init] [ERROR] /usr/local/bin/kubesolo not found: the image carries no KubeSolo"
)
SPEC_BINARY_NOT_EXECUTABLE = "[kubesolo-init] [ERROR] /usr/local/bin/kubesolo is not executable"

# ---- Failure handling, kubesolo.shell, boot markers ----------------------------------
SPEC_EMERGENCY_LINES = (
    "[kubesolo-init] [ERROR] Boot failed: emergency shell on the console;"
    " type 'exit' to retry the boot sequence",
    "[kubesolo-init] [INFO] Useful: dmesg | tail -50; cat /proc/cmdline; cat /proc/mounts;"
    " findfs LABEL=KSOLODATA; ip addr",
)
SPEC_RETRY_LINE = "[kubesolo-init] [INFO] Retrying the boot sequence"
SPEC_SHELL_HINT = (
    "[kubesolo-init] [INFO] kubesolo.shell: shell after stage 10; type 'exit' to continue the boot"
)
SPEC_EMERGENCY_PROMPT = "(kubesolo-emergency) # "
SPEC_SHELL_PROMPT = "(kubesolo-shell) # "


def spec_started(stage: str) -> str:
    return f"[kubesolo-init] [INFO] Stage {stage} starting"


def spec_done(stage: str) -> str:
    return f"[kubesolo-init] [OK] Stage {stage} complete"


def spec_failed(stage: str) -> str:
    return f"[kubesolo-init] [ERROR] Stage {stage} failed"


SPEC_INIT_PREFIX = "[kubesolo-init] "  # every init line starts with it
SPEC_BOOT_MARKER = "[kubesolo-init] [OK] Stage 90-kubesolo.sh complete"
SPEC_ERROR_PREFIX = "[kubesolo-init] [ERROR]"
SPEC_WARN_PREFIX = "[kubesolo-init] [WARN]"

# docs/boot-flow.md "Supervision": init's supervisor of KubeSolo
SPEC_SUPERVISOR = {
    "KUBESOLO_FAST_EXIT_SECONDS": 120,
    "KUBESOLO_MAX_FAST_FAILURES": 5,
    "KUBESOLO_FIRST_BACKOFF": 2,
    "KUBESOLO_MAX_BACKOFF": 30,
    "KUBESOLO_LAST_LINES": 20,
    "KUBESOLO_STOP_SECONDS": 60,
    "PROCESS_STOP_SECONDS": 10,
}
SPEC_BACKOFFS = (2, 4, 8, 16, 30, 30)  # before starts 2, 3, ...: doubling, at most 30
