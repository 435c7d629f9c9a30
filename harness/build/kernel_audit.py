"""`kubesolo-harness kernel-audit`: does the image's kernel have what Kubernetes,
containerd, crun, the CNI bridge, overlayfs, cgroup v2 and KubeSolo need?

In the spirit of moby's check-config.sh, but for this image: the configuration
is the Debian kernel package's own `/boot/config-*`, and an option built as a
module counts only if the image carries that module (docs/kubesolo.md "Host
requirements", docs/boot-flow.md "Stage 30 — Kernel Modules")."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.artefact import Image, cache_root
from harness.build import debian
from harness.errors import UserError

KERNEL_PACKAGE = "linux-image-amd64"


@dataclass(frozen=True)
class Option:
    """One kernel option the node needs (`required`) or can use (`optional`)."""

    name: str  # without the CONFIG_ prefix
    required: bool
    module: str | None  # the module it builds as `=m`; None: never a module
    why: str


def _req(name: str, module: str | None, why: str) -> Option:
    return Option(name, True, module, why)


def _opt(name: str, module: str | None, why: str) -> Option:
    return Option(name, False, module, why)


OPTIONS: tuple[Option, ...] = (
    # Containers: namespaces, limits and the syscalls runc and crun use.
    _req("NAMESPACES", None, "container namespaces"),
    _req("NET_NS", None, "a network namespace per pod"),
    _req("PID_NS", None, "a PID namespace per container"),
    _req("IPC_NS", None, "an IPC namespace per pod"),
    _req("UTS_NS", None, "a hostname per pod"),
    _opt("USER_NS", None, "user-namespaced pods"),
    _req("SECCOMP", None, "the RuntimeDefault seccomp profile"),
    _req("SECCOMP_FILTER", None, "seccomp filters (crun, runc)"),
    _req("POSIX_MQUEUE", None, "POSIX message queues in the IPC namespace"),
    _req("KEYS", None, "session keyrings that runc creates"),
    _req("BPF_SYSCALL", None, "cgroup v2 device control is a BPF program"),
    # cgroup v2 with the controllers the kubelet asks for.
    _req("CGROUPS", None, "cgroups"),
    _req("CGROUP_BPF", None, "the cgroup v2 device controller"),
    _req("CGROUP_PIDS", None, "the pids controller"),
    _req("MEMCG", None, "the memory controller (the kubelet requires it)"),
    _req("CPUSETS", None, "the cpuset controller"),
    _req("CGROUP_SCHED", None, "the cpu controller"),
    _req("BLK_CGROUP", None, "the io controller"),
    _opt("CGROUP_FREEZER", None, "the v1 freezer (cgroup v2 has it in its core)"),
    _opt("CGROUP_DEVICE", None, "v1 device rules (cgroup v2 uses BPF)"),
    _opt("CGROUP_CPUACCT", None, "v1 CPU accounting (cgroup v2 has it in its core)"),
    _req("CFS_BANDWIDTH", None, "CPU limits: the kubelet writes cpu.max"),
    _opt("CGROUP_HUGETLB", None, "the hugetlb controller"),
    _opt("CGROUP_PERF", None, "the perf_event controller"),
    _opt("PSI", None, "pressure stall information for the kubelet"),
    # File systems: the container root, the data disk, shares in tests.
    _req("OVERLAY_FS", "overlay", "containerd's overlayfs snapshotter"),
    _req("EXT4_FS", "ext4", "the data partition"),
    _req("TMPFS", None, "the tmpfs root of stage 00, emptyDir volumes"),
    _req("DEVTMPFS", None, "/dev of stage 00"),
    _req("BLK_DEV_INITRD", None, "the initramfs"),
    _req("RD_GZIP", None, "the dev VM's overlay is a gzip initramfs member"),
    _opt("9P_FS", "9p", "host shares in tests"),
    _opt("NET_9P_VIRTIO", "9pnet_virtio", "host shares in tests"),
    # The CNI bridge: veth pairs on cni0, bridged traffic through iptables.
    _req("VETH", "veth", "the pod end of the CNI bridge"),
    _req("BRIDGE", "bridge", "the CNI bridge cni0"),
    _req(
        "BRIDGE_NETFILTER", "br_netfilter", "KubeSolo modprobes it; bridged traffic sees iptables"
    ),
    _opt("VXLAN", "vxlan", "overlay networks (stage 30 loads it)"),
    # iptables (Debian 12's nf_tables back end) for kube-proxy and masquerade.
    _req("NETFILTER_ADVANCED", None, "the xt matches below"),
    _req("NF_CONNTRACK", "nf_conntrack", "connection tracking for services"),
    _req("NF_NAT", "nf_nat", "NAT for services and pod masquerade"),
    _req("NF_TABLES", "nf_tables", "iptables-nft, the image's iptables"),
    _req("NFT_COMPAT", "nft_compat", "xt matches under iptables-nft"),
    _req("NFT_NAT", "nft_chain_nat", "the nat chain type of iptables-nft"),
    _req("NETFILTER_XT_TARGET_MASQUERADE", "xt_MASQUERADE", "pod masquerade (KubeSolo)"),
    _req("NETFILTER_XT_MATCH_CONNTRACK", "xt_conntrack", "kube-proxy"),
    _req("NETFILTER_XT_MATCH_COMMENT", "xt_comment", "kube-proxy's rule comments"),
    _req("NETFILTER_XT_MATCH_ADDRTYPE", "xt_addrtype", "kube-proxy's LOCAL match"),
    _req("NETFILTER_XT_MATCH_MULTIPORT", "xt_multiport", "kube-proxy"),
    _req("NETFILTER_XT_NAT", "xt_nat", "DNAT and SNAT targets"),
    _req("NETFILTER_XT_MATCH_STATISTIC", "xt_statistic", "kube-proxy's load balancing"),
    _req("NETFILTER_XT_MARK", "xt_mark", "kube-proxy's masquerade mark, hostPort"),
    _req(
        "IP_NF_TARGET_REJECT", "ipt_REJECT", "kube-proxy's REJECT for a service without endpoints"
    ),
    _req("NETFILTER_XT_MATCH_RECENT", "xt_recent", "KubeSolo modprobes it"),
    _req("NETFILTER_XT_SET", "xt_set", "KubeSolo modprobes it"),
    _req("NETFILTER_XT_MATCH_NFACCT", "xt_nfacct", "KubeSolo modprobes it"),
    _opt("IP_NF_IPTABLES", "ip_tables", "the legacy iptables back end"),
    _opt("IP_NF_NAT", "iptable_nat", "the legacy iptables nat table"),
    _opt("IP_VS", "ip_vs", "kube-proxy's IPVS mode (stage 30 loads it)"),
    _opt("IP_VS_RR", "ip_vs_rr", "IPVS round robin"),
    _opt("IP_VS_WRR", "ip_vs_wrr", "IPVS weighted round robin"),
    _opt("IP_VS_SH", "ip_vs_sh", "IPVS source hashing"),
)

_LINE = re.compile(r"^CONFIG_(\w+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_(\w+) is not set$")


def parse_config(text: str) -> dict[str, str]:
    """A kernel .config as {option: value}; `is not set` reads as 'n'."""
    values = {}
    for line in text.splitlines():
        if m := _LINE.match(line.strip()):
            values[m[1]] = m[2]
        elif m := _UNSET.match(line.strip()):
            values[m[1]] = "n"
    return values


@dataclass(frozen=True)
class Finding:
    option: str  # with the CONFIG_ prefix, as a user greps for it
    required: bool
    state: str  # y | m | missing
    module: str | None
    in_image: bool | None  # for state m: does the image carry the module?
    why: str

    @property
    def ok(self) -> bool:
        return self.state == "y" or (self.state == "m" and self.in_image is not False)


def audit(
    config: dict[str, str], modules: set[str] | None, options: tuple[Option, ...] = OPTIONS
) -> list[Finding]:
    """Each option's state. `modules` is what the image carries (None: unknown,
    for a bare config file); a module's `-` and `_` are the same name."""
    carried = {m.replace("-", "_") for m in modules} if modules is not None else None
    found = []
    for opt in options:
        value = config.get(opt.name, "n")
        state = value if value in ("y", "m") else "missing"
        in_image = None
        if state == "m" and carried is not None:
            in_image = (opt.module or "").replace("-", "_") in carried
        found.append(
            Finding(f"CONFIG_{opt.name}", opt.required, state, opt.module, in_image, opt.why)
        )
    return found


def _state_text(f: Finding) -> str:
    if f.state != "m":
        return f.state
    return {True: "m, in image", False: "m, NOT in image", None: "m"}[f.in_image]


def table(findings: list[Finding], title: str) -> list[str]:
    """A readable table: one row per option, problems marked with `!`."""
    rows = [("", "option", "need", "state", "module", "why")]
    for f in findings:
        mark = "" if f.ok else ("!" if f.required else "-")
        need = "required" if f.required else "optional"
        rows.append((mark, f.option, need, _state_text(f), f.module or "", f.why))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = [title]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)) + "  " + r[5]
        for r in rows
    ]
    return [line.rstrip() for line in lines]


def verdict(findings: list[Finding]) -> tuple[int, str]:
    """Exit status and summary line: 1 when a required option is missing
    (or is a module the image does not carry)."""
    bad = [f.option for f in findings if f.required and not f.ok]
    required = sum(f.required for f in findings)
    if bad:
        return (
            1,
            f"kernel-audit: {len(bad)} of {required} required options missing: {', '.join(bad)}",
        )
    gaps = sum(not f.ok for f in findings)
    return 0, f"kernel-audit: all {required} required options present; {gaps} optional missing"


def image_kernel_config(image: Image) -> tuple[Path, set[str], str]:
    """The image's kernel configuration (from its Debian package, unpacked in
    the cache), the modules the image carries and a one-line description."""
    manifest = image.manifest
    entry = next((p for p in manifest.get("packages", []) if p["name"] == KERNEL_PACKAGE), None)
    if entry is None or "kernel_version" not in manifest:
        raise UserError(f"{image.path}: the manifest names no kernel package; rebuild the image")
    spec = debian.PackageSpec(name=KERNEL_PACKAGE, into="kernel", take=())
    package = debian.ResolvedPackage(spec, entry["package"], entry["version"])
    root = debian.unpacked(package, cache_root())
    config = root / "boot" / f"config-{manifest['kernel_version']}"
    if not config.is_file():
        raise UserError(f"{entry['package']} {entry['version']} has no {config.name}")
    title = f"kernel {manifest['kernel_version']} ({entry['package']} {entry['version']})"
    return config, set(manifest.get("modules", [])), title


def main_kernel_audit(image: Image | None, config_file: Path | None, json_out: str | None) -> int:
    """Print the table and the verdict; exit 1 on a missing required option."""
    modules: set[str] | None = None
    if config_file is not None:
        if not config_file.is_file():
            raise UserError(f"{config_file}: no such kernel configuration file")
        config, title = config_file, f"kernel configuration {config_file}"
    else:
        assert image is not None, "an image or a configuration file"
        config, modules, title = image_kernel_config(image)
    findings = audit(parse_config(config.read_text(errors="replace")), modules)
    for line in table(findings, title):
        print(line)
    status, summary = verdict(findings)
    print(summary)
    if json_out:
        report = {"title": title, "ok": status == 0, "options": [asdict(f) for f in findings]}
        Path(json_out).write_text(json.dumps(report, indent=2) + "\n")
    return status
