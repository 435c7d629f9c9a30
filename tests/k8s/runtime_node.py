"""KubeSolo's container half without KubeSolo: Debian's containerd, crun, the
runc v2 shim and the CNI plugins (a read-only 9p share the builder makes,
harness.build.runtime_tools), configured and laid out as KubeSolo lays out
its embedded containerd (docs/kubesolo.md "Runtime", "Networking") and started
on a booted test image: the OS's own kernel, init, mounts, sysctls, modules
and iptables carry the containers.

The pure parts (containerd's config, the CNI network list, a CNI plugin's
stdin, kube-proxy-style service rules) are unit-tested in
test_runtime_config.py; RuntimeNode drives a booted machine."""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import json
import os
import re
import shlex
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import guest
from harness.build.workload_recipes import BUSYBOX_REF, NGINX_REF
from harness.k8s import commands, preload
from harness.k8s.host import KubeHost
from harness.k8s.kubesolo import CONTAINERD_SOCKETS, POD_NETWORK
from harness.vm.guest_files import write_file_command

# ---- where KubeSolo keeps its runtime (docs/kubesolo.md "Runtime") ----------------------
CONTAINERD_DIR = f"{guest.KUBESOLO_PATH}/containerd"
SOCKET, RUN_SOCKET = CONTAINERD_SOCKETS
CONFIG_PATH = f"{CONTAINERD_DIR}/config.toml"
ROOT_DIR = f"{CONTAINERD_DIR}/root"
STATE_DIR = f"{CONTAINERD_DIR}/state"
CRUN = f"{CONTAINERD_DIR}/crun"
SHIM = f"{CONTAINERD_DIR}/containerd-shim-runc-v2"
DROP_INS = "/etc/containerd/config.d/*.toml"
PAUSE_IMAGE = "docker.io/portainer/pause:latest"
RUNTIME_NAME = "runc"  # KubeSolo's name for it; the binary is crun
RUNTIME_TYPE = "io.containerd.runc.v2"

# ---- CNI (docs/kubesolo.md "Networking") -------------------------------------------------------
CNI_PLUGINS_DIR = f"{CONTAINERD_DIR}/cni/plugins"
CNI_CONF_DIR = f"{CONTAINERD_DIR}/cni/conf"
CONFLIST_NAME = "10-bridge.conflist"
CNI_PLUGINS = ("bridge", "host-local", "portmap", "loopback")
NETWORK_NAME = "kubesolo-net"
CNI_VERSION = "1.0.0"
BRIDGE = "cni0"
POD_GATEWAY = "10.42.0.1"  # host-local gives the bridge the subnet's first address
# What ctr's --cni reads (the CNI library's defaults): KubeSolo links its conflist there.
ETC_CNI = "/etc/cni/net.d"
OPT_CNI = "/opt/cni/bin"
# KubeSolo's pod masquerade rule, added with the OS's own iptables before the kubelet starts.
MASQUERADE_RULE = ("POSTROUTING", "-s", POD_NETWORK, "!", "-d", POD_NETWORK, "-j", "MASQUERADE")

# ---- the harness's side ----------------------------------------------------------------
TOOLS_TAG = "ksruntime"  # the 9p share of the tools tree
TOOLS_MOUNT = "/mnt/runtime-tools"
GUEST_LIBDIR = "/usr/lib/x86_64-linux-gnu"  # where the image's own libraries are
CONTAINERD_BIN = "/opt/kubesolo-runtime/containerd"  # on the tmpfs root: KubeSolo embeds it
CONTAINERD_LOG = f"{guest.RUN_DIR}/containerd.log"
SOCKET_WAIT_SECONDS = 120
MEMORY_MB = 1024


# ---- pure parts --------------------------------------------------------------------------
def toml_value(value: object) -> str:
    """A TOML scalar or array (json's strings are TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_text(tables: Mapping[str, Mapping[str, object]]) -> str:
    """TOML from {table name ("" = top level): {key: scalar}}, in the given order."""
    out = []
    for name, keys in tables.items():
        if name:
            out.append(f"\n[{name}]")
        out.extend(f"{key} = {toml_value(value)}" for key, value in keys.items())
    return "\n".join(out).lstrip("\n") + "\n"


def containerd_config() -> str:
    """containerd's config.toml as KubeSolo writes it for its embedded containerd, in
    the version-2 schema of Debian's containerd 1.6 (KubeSolo's own 2.x uses version 3
    for the same settings): namespace k8s.io is the clients' (kubelet, ctr -n k8s.io)."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runtime = f"{cri}.containerd.runtimes.{RUNTIME_NAME}"
    return toml_text(
        {
            "": {"version": 2, "root": ROOT_DIR, "state": STATE_DIR, "imports": [DROP_INS]},
            "grpc": {"address": SOCKET},
            cri: {"sandbox_image": PAUSE_IMAGE},
            f"{cri}.containerd": {"snapshotter": "overlayfs", "default_runtime_name": RUNTIME_NAME},
            runtime: {"runtime_type": RUNTIME_TYPE},
            f"{runtime}.options": {"BinaryName": CRUN, "SystemdCgroup": False},
            f"{cri}.cni": {"bin_dir": CNI_PLUGINS_DIR, "conf_dir": CNI_CONF_DIR},
        }
    )


def cni_conflist() -> dict[str, Any]:
    """KubeSolo's network list: bridge cni0 (gateway, masquerade, hairpin) with
    host-local addresses from the pod network and a default route; portmap; loopback."""
    bridge = {
        "type": "bridge",
        "bridge": BRIDGE,
        "isGateway": True,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": POD_NETWORK}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    }
    portmap = {"type": "portmap", "capabilities": {"portMappings": True}}
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [bridge, portmap, {"type": "loopback"}],
    }


def plugin_stdin(
    conflist: Mapping[str, Any],
    index: int,
    prev_result: Mapping[str, Any] | None = None,
    runtime_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The network configuration one plugin of a list reads on stdin, as the CNI
    library builds it: the list's name and version, the previous plugin's result,
    and only the runtime settings (e.g. portMappings) the plugin has the capability for."""
    conf = dict(conflist["plugins"][index])
    conf["name"], conf["cniVersion"] = conflist["name"], conflist["cniVersion"]
    if prev_result is not None:
        conf["prevResult"] = dict(prev_result)
    capabilities = conf.get("capabilities", {})
    wanted = {k: v for k, v in (runtime_config or {}).items() if capabilities.get(k)}
    if wanted:
        conf["runtimeConfig"] = wanted
    return conf


def result_ipv4(result: Mapping[str, Any]) -> str:
    """The container's IPv4 address from a CNI result (without its prefix length)."""
    for ip in result.get("ips", []):
        address = str(ip["address"]).split("/")[0]
        if "." in address:
            return address
    raise ValueError(f"no IPv4 address in the CNI result {dict(result)}")


MARK_MASQ = "0x4000/0x4000"  # kube-proxy's masquerade mark


def service_rules(
    service_ip: str, port: int, endpoint_ip: str, target_port: int
) -> list[list[str]]:
    """iptables argv (nat table) of kube-proxy's iptables mode for one ClusterIP with
    one endpoint: KUBE-SERVICES from PREROUTING and OUTPUT, a KUBE-SVC chain, a KUBE-SEP
    chain that marks hairpin traffic (the endpoint reaching itself) for masquerade and
    DNATs, and KUBE-POSTROUTING masquerading marked packets."""
    svc, sep = "KUBE-SVC-RUNTIMESUITE", "KUBE-SEP-RUNTIMESUITE"
    chains = ["KUBE-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING", svc, sep]
    rules = [["-N", chain] for chain in chains]
    rules += [
        ["-A", "KUBE-MARK-MASQ", "-j", "MARK", "--or-mark", "0x4000"],
        ["-A", "KUBE-POSTROUTING", "-m", "mark", "--mark", MARK_MASQ, "-j", "MASQUERADE"],
        ["-I", "PREROUTING", "-j", "KUBE-SERVICES"],
        ["-I", "OUTPUT", "-j", "KUBE-SERVICES"],
        ["-I", "POSTROUTING", "-j", "KUBE-POSTROUTING"],
        [
            "-A",
            "KUBE-SERVICES",
            "-d",
            f"{service_ip}/32",
            "-p",
            "tcp",
            "--dport",
            f"{port}",
            "-j",
            svc,
        ],
        ["-A", svc, "-j", sep],
        ["-A", sep, "-s", f"{endpoint_ip}/32", "-j", "KUBE-MARK-MASQ"],
        ["-A", sep, "-p", "tcp", "-j", "DNAT", "--to-destination", f"{endpoint_ip}:{target_port}"],
    ]
    return [["iptables", "-w", "-t", "nat", *rule] for rule in rules]


def setup_commands(tools_mount: str = TOOLS_MOUNT) -> list[str]:
    """What KubeSolo does before its containerd serves, on the guest: the runtime's
    libraries next to the image's, crun, the shim and the CNI plugins extracted into
    <path>/containerd, the config and the conflist written and linked, ctr on PATH."""
    src = shlex.quote(tools_mount)
    conflist = f"{CNI_CONF_DIR}/{CONFLIST_NAME}"
    plugins = " ".join(CNI_PLUGINS)
    return [
        f"mkdir -p {src} && {{ grep -qs ' {tools_mount} ' /proc/mounts || "
        f"mount -t 9p -o trans=virtio,ro,version=9p2000.L {TOOLS_TAG} {src}; }}",
        f"cp -n {src}/lib/* {GUEST_LIBDIR}/",
        # into RAM: exec'ing a large Go binary over 9p rereads it from the host each time
        f"mkdir -p {CONTAINERD_BIN.rsplit('/', 1)[0]} && cp {src}/bin/containerd {CONTAINERD_BIN}",
        f"[ -e /usr/bin/ctr ] || cp {src}/bin/ctr /usr/bin/ctr",
        f"mkdir -p {CNI_PLUGINS_DIR} {CNI_CONF_DIR} {ETC_CNI} {OPT_CNI} {ROOT_DIR} {STATE_DIR}",
        f"cp {src}/bin/crun {CRUN} && cp {src}/bin/containerd-shim-runc-v2 {SHIM}",
        f"for p in {plugins}; do cp {src}/cni/$p {CNI_PLUGINS_DIR}/$p && "
        f"ln -sfn {CNI_PLUGINS_DIR}/$p {OPT_CNI}/$p; done",
        write_file_command(CONFIG_PATH, containerd_config()),
        write_file_command(conflist, json.dumps(cni_conflist(), indent=2) + "\n"),
        f"ln -sfn {conflist} {ETC_CNI}/{CONFLIST_NAME}",
    ]


def start_command() -> str:
    """Start containerd in its own session (it outlives the test shell's command),
    wait until it answers on its socket (a socket file left by the previous boot on
    the data partition proves nothing), link the socket where clients look, and add
    the pod masquerade rule."""
    rule = " ".join(shlex.quote(w) for w in MASQUERADE_RULE)
    answers = f"{ctr('version')} >/dev/null 2>&1"
    return (
        f"rm -f {SOCKET} && PATH={CONTAINERD_DIR}:$PATH setsid {CONTAINERD_BIN}"
        f" --config {CONFIG_PATH} </dev/null >>{CONTAINERD_LOG} 2>&1 &\n"
        f"i=0; until {answers} || [ $i -ge {SOCKET_WAIT_SECONDS * 2} ]; do "
        "sleep 0.5; i=$((i+1)); done\n"
        f"{answers} || {{ tail -20 {CONTAINERD_LOG}; false; }} && "
        f"mkdir -p {RUN_SOCKET.rsplit('/', 1)[0]} && ln -sfn {SOCKET} {RUN_SOCKET} && "
        f"{{ iptables -w -t nat -C {rule} 2>/dev/null || iptables -w -t nat -A {rule}; }}"
    )


def ctr(*args: str) -> str:
    """A ctr command line against KubeSolo's socket in namespace k8s.io (the k8s suite's)."""
    return commands.ctr_command(SOCKET, *args)


# ---- a booted node ----------------------------------------------------------------------
_ids = itertools.count(1)  # container and exec ids: with the worker's name, unique in a run
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


@dataclass
class Container:
    id: str
    pid: int
    ip: str | None = None


class RuntimeNode:
    """A booted test machine whose containerd serves as KubeSolo's would."""

    def __init__(self, machine: KubeHost) -> None:
        self.machine = machine
        self.containerd = CONTAINERD_BIN

    def bring_up(self) -> None:
        for command in setup_commands():
            self.machine.succeed(command, timeout=120)
        self.machine.succeed(start_command(), timeout=SOCKET_WAIT_SECONDS + 60)
        self.machine.succeed(ctr("version"), timeout=60)

    def preload(self, images: Path) -> list[str]:
        """Import the archives of the images share with the k8s suite's own preload (share
        mount, socket discovery, ctr import, gunzip pipe, ls, tag): the images now present."""
        _, present = preload.import_images(
            self.machine, images, (NGINX_REF, BUSYBOX_REF), BUSYBOX_REF, timeout=600
        )
        return present

    def release_shares(self) -> None:
        """Unmount the tools and images shares, so that the node can be saved: what
        containerd runs is in RAM or on the data disk by now (setup_commands)."""
        self.machine.succeed(commands.unmount_shares_command(), timeout=60)

    def succeed(self, command: str, timeout: float = 120) -> str:
        return self.machine.succeed(command, timeout=timeout)

    @staticmethod
    def new_id(what: str) -> str:
        return f"{what}-{_WORKER}-{next(_ids)}"

    def run(self, image: str, *argv: str, flags: Sequence[str] = (), timeout: float = 180) -> str:
        """Run a container to its end (removed after) and return what it printed."""
        name = self.new_id("run")
        command = ctr("run", "--rm", "--runc-binary", CRUN, *flags, image, name, *argv)
        return self.machine.succeed(command, timeout=timeout)

    def run_status(self, image: str, *argv: str, flags: Sequence[str] = ()) -> tuple[int, str]:
        name = self.new_id("run")
        command = ctr("run", "--rm", "--runc-binary", CRUN, *flags, image, name, *argv)
        return self.machine.execute(command, timeout=180)

    def start(
        self, image: str, *argv: str, cni: bool = True, flags: Sequence[str] = (), name: str = ""
    ) -> Container:
        """Start a detached container (on the kubesolo-net bridge with cni)."""
        name = name or self.new_id("c")
        pid_file = f"{guest.RUN_DIR}/{name}.pid"
        net = ["--cni"] if cni else []
        self.machine.succeed(
            ctr(
                "run",
                "-d",
                "--runc-binary",
                CRUN,
                "--pid-file",
                pid_file,
                *net,
                *flags,
                image,
                name,
                *argv,
            ),
            timeout=180,
        )
        pid = int(self.machine.succeed(f"cat {pid_file}").strip())
        container = Container(name, pid)
        if cni:
            container.ip = self.ipv4(container)
        return container

    def exec(self, container: Container, *argv: str, timeout: float = 120) -> tuple[int, str]:
        exec_id = self.new_id("exec")
        command = ctr("task", "exec", "--exec-id", exec_id, container.id, *argv)
        return self.machine.execute(command, timeout=timeout)

    def ipv4(self, container: Container) -> str:
        """The address of eth0 in the container's network namespace."""
        status, out = self.exec(container, "ip", "-4", "-o", "addr", "show", "eth0")
        match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
        if status != 0 or not match:
            raise AssertionError(f"{container.id} has no IPv4 address on eth0: {out}")
        return match.group(1)

    def remove(self, container: Container) -> None:
        self.machine.execute(ctr("task", "kill", "-s", "KILL", container.id), timeout=60)
        self.machine.wait_until_succeeds(
            f"! {ctr('task', 'ls')} | grep -q '^{container.id} .*RUNNING'", timeout=60
        )
        self.machine.execute(ctr("task", "delete", container.id), timeout=60)
        self.machine.succeed(ctr("container", "delete", container.id), timeout=60)

    # ---- CNI plugins driven directly, as the CRI plugin drives them ----
    def cni(
        self,
        command: str,
        container: Container,
        runtime_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run kubesolo-net's plugins in order for ADD (each with the previous result),
        in reverse for DEL; the last result (ADD)."""
        conflist = cni_conflist()
        order = range(len(conflist["plugins"]))
        result: dict[str, Any] | None = None
        for index in order if command == "ADD" else reversed(order):
            stdin = plugin_stdin(conflist, index, result, runtime_config)
            env = {
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": container.id,
                "CNI_NETNS": f"/proc/{container.pid}/ns/net",
                "CNI_IFNAME": "eth0",
                "CNI_PATH": CNI_PLUGINS_DIR,
            }
            out = self.machine.succeed(
                f"echo {base64.b64encode(json.dumps(stdin).encode()).decode()} | base64 -d | "
                + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
                + f" {CNI_PLUGINS_DIR}/{stdin['type']}",
                timeout=120,
            )
            if command == "ADD":
                result = json.loads(out)
        if command == "ADD":
            assert result is not None
            container.ip = result_ipv4(result)
            return result
        return {}


def iptables_packets(listing: str, *words: str) -> int:
    """Packets counted by the first rule of an `iptables -v -n -x -L` listing whose
    line holds all `words`."""
    for line in listing.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit() and all(w in fields for w in words):
            return int(fields[0])
    raise AssertionError(f"no rule with {words} in:\n{listing}")


def mount_propagation(mountinfo: str, mount_point: str) -> set[str]:
    """The propagation of a mount point in a mountinfo text: its optional fields'
    kinds ("shared", "master", ...); empty for a private mount."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 6 and fields[4] == mount_point:
            return {tag.split(":")[0] for tag in fields[6 : fields.index("-")]}
    raise AssertionError(f"{mount_point} is not in mountinfo")


def keep_refs(archive: bytes, refs: Iterable[str]) -> bytes:
    """An OCI image archive whose index names only `refs` (as an archive someone
    exported with one tag would): the other entries of index.json are dropped."""
    keep = set(refs)
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as src,
        tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as dst,
    ):
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None  # type: ignore[union-attr]
            if member.name == "index.json" and data is not None:
                index = json.loads(data)
                index["manifests"] = [
                    m for m in index["manifests"] if set(m.get("annotations", {}).values()) & keep
                ]
                data = json.dumps(index).encode()
                member.size = len(data)
            dst.addfile(member, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)
