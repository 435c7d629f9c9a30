"""The container half of a KubeSolo node, without KubeSolo: Debian's containerd
configured as KubeSolo configures its own, crun through the runc v2 shim, on
the OS's kernel, root file system, cgroups and data partition. The tests share
the run's runtime node; the reboot test has a node of its own."""

from __future__ import annotations

import json
import secrets
import tomllib

import pytest
from runtime_node import (
    CONFIG_PATH,
    CRUN,
    ROOT_DIR,
    RUN_SOCKET,
    SOCKET,
    STATE_DIR,
    RuntimeNode,
    ctr,
    mount_propagation,
)

from harness import guest
from harness.build.workload_recipes import BUSYBOX_REF, NGINX_REF
from harness.k8s import commands
from harness.k8s.image_refs import normalize_image_ref
from harness.k8s.kubesolo import KUBELET_HEALTHZ, LOCAL_PATH_HELPER_IMAGE

pytestmark = [pytest.mark.runtime, pytest.mark.qemu_only("its tools reach the guest over 9p")]

MEMORY_LIMIT = 32 * 1024 * 1024
PIDS_LIMIT = 10
CGROUP_ROOT = "/sys/fs/cgroup"
CRI = "io.containerd.grpc.v1.cri"
DROP_IN_DIR = "/etc/containerd/config.d"  # docs/kubesolo.md "Runtime": KubeSolo's imports
# containerd 1.6 replaces a plugin's whole table with a drop-in's: the probe sets one
# that KubeSolo's config leaves alone.
GC = "io.containerd.gc.v1.scheduler"
DROP_IN_VALUE = 12345
CRUN_STATE = "/run/containerd/runc/k8s.io"  # the shim's --root for the runtime, namespace k8s.io


def test_containerd_serves_as_kubesolos_embedded_one(runtime_node: RuntimeNode) -> None:
    """docs/kubesolo.md "Runtime": the socket under <path>/containerd is the one the k8s
    suite's discovery finds, linked from /run/containerd; containerd reads KubeSolo's
    settings (root and state under <path>/containerd, crun through the runc v2 shim,
    overlayfs, cgroupfs) and merges a drop-in from the directory the OS writes into."""
    vm = runtime_node.machine
    assert vm.succeed(commands.containerd_socket_command()).strip() == SOCKET
    assert vm.succeed(f"readlink {RUN_SOCKET}").strip() == SOCKET
    drop_in = f"{DROP_IN_DIR}/99-runtime-suite.toml"
    vm.succeed(
        f"mkdir -p {DROP_IN_DIR} && printf '%s\\n' 'version = 2' '[plugins.\"{GC}\"]' "
        f"'deletion_threshold = {DROP_IN_VALUE}' > {drop_in}"
    )
    try:
        dumped = tomllib.loads(
            vm.succeed(f"{runtime_node.containerd} --config {CONFIG_PATH} config dump")
        )
    finally:
        vm.succeed(f"rm -f {drop_in}")
    assert (dumped["root"], dumped["state"]) == (ROOT_DIR, STATE_DIR)
    assert drop_in in dumped["imports"]
    assert dumped["plugins"][GC]["deletion_threshold"] == DROP_IN_VALUE
    cri = dumped["plugins"][CRI]["containerd"]
    runtime = cri["runtimes"][cri["default_runtime_name"]]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"]["BinaryName"] == CRUN
    assert runtime["options"]["SystemdCgroup"] is False
    assert cri["snapshotter"] == "overlayfs"
    plugins = vm.succeed(ctr("plugins", "ls"))
    for kind, name in (("snapshotter", "overlayfs"), ("grpc", "cri"), ("runtime", "task")):
        assert any(
            f".{kind}." in line and line.split()[1] == name and line.split()[-1] == "ok"
            for line in plugins.splitlines()[1:]
        ), plugins


def test_kubelet_probe_of_the_k8s_suite_answers(runtime_node: RuntimeNode) -> None:
    """docs/kubesolo.md "Health": the k8s suite's kubelet probe, run as it runs it, reads
    `ok` from a plain-HTTP /healthz on 127.0.0.1:10248 (here busybox httpd stands in for
    the kubelet), and fails when nothing listens there."""
    vm = runtime_node.machine
    vm.fail(commands.kubelet_healthz_command())
    www = f"{guest.RUN_DIR}/kubelet-healthz"
    port = KUBELET_HEALTHZ.split("//", 1)[1].split("/", 1)[0]
    vm.succeed(
        f"mkdir -p {www} && printf ok > {www}/healthz && "
        f"setsid httpd -p {port} -h {www} </dev/null >/dev/null 2>&1 &"
    )
    assert vm.wait_until_succeeds(commands.kubelet_healthz_command(), timeout=60) == "ok"


def test_imported_images_are_there_under_the_kubelets_names(runtime_node: RuntimeNode) -> None:
    """docs/kubesolo.md "Images": the archives built from Debian packages were imported
    by the k8s suite's preload (nginx plain, busybox through gunzip); busybox:latest, which
    only local-path's helper pod asks for, was tagged from busybox:stable."""
    present = runtime_node.succeed(ctr("images", "ls", "-q")).split()
    for ref in (NGINX_REF, BUSYBOX_REF, LOCAL_PATH_HELPER_IMAGE):
        assert normalize_image_ref(ref) in present, present


def test_a_container_runs_through_crun_and_its_output_is_read_back(
    runtime_node: RuntimeNode,
) -> None:
    """docs/kubesolo.md "Runtime" and docs/boot-flow.md "Root file system": a container
    starts (the runtime pivot_roots into it from the OS's tmpfs root), crun is the runtime
    the shim ran, with the cgroupfs driver, and what it prints comes back."""
    token = secrets.token_hex(8)
    assert runtime_node.run(BUSYBOX_REF, "echo", f"hello {token}") == f"hello {token}\n"
    container = runtime_node.start(BUSYBOX_REF, "sleep", "600", cni=False)
    state = json.loads(runtime_node.succeed(f"cat {CRUN_STATE}/{container.id}/status"))
    assert state["systemd-cgroup"] is False
    assert state["cgroup-path"] == f"/k8s.io/{container.id}"
    runtime_node.remove(container)


def test_memory_limit_is_enforced_by_cgroup_v2(runtime_node: RuntimeNode) -> None:
    """docs/kubesolo.md "Host requirements": the memory controller enforces a container's
    limit: its cgroup's memory.max is the limit, and a process allocating past it is
    OOM-killed (exit 137), counted in the cgroup's memory.events."""
    container = runtime_node.start(
        BUSYBOX_REF,
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64M count=1; echo $? > /dd-status; sleep 600",
        cni=False,
        flags=["--memory-limit", str(MEMORY_LIMIT)],
    )
    cgroup = f"{CGROUP_ROOT}/k8s.io/{container.id}"
    assert runtime_node.succeed(f"cat {cgroup}/memory.max").strip() == str(MEMORY_LIMIT)
    events = runtime_node.machine.wait_until_succeeds(
        f"grep -q '^oom_kill [1-9]' {cgroup}/memory.events && cat {cgroup}/memory.events",
        timeout=120,
    )
    assert "oom_kill 0" not in events
    status, out = runtime_node.exec(container, "cat", "/dd-status")
    assert (status, out.strip()) == (0, "137")
    runtime_node.remove(container)


def test_pids_limit_is_enforced_by_cgroup_v2(runtime_node: RuntimeNode) -> None:
    """docs/kubesolo.md "Host requirements": the pids controller enforces a pod-level
    pids.max, as the kubelet sets it on the pod's cgroup: a fork loop in the container
    gets EAGAIN, and the refused forks are counted in pids.events."""
    pod = f"{CGROUP_ROOT}/kubepods/pod-runtime-{secrets.token_hex(4)}"
    runtime_node.succeed(
        f"mkdir -p {pod} && echo '+pids +memory' > {CGROUP_ROOT}/kubepods/cgroup.subtree_control"
        f" && echo {PIDS_LIMIT} > {pod}/pids.max"
    )
    name = runtime_node.new_id("pids")
    cgroup = f"{pod.removeprefix(CGROUP_ROOT)}/{name}"
    container = runtime_node.start(
        BUSYBOX_REF, "sleep", "600", cni=False, name=name, flags=["--cgroup", cgroup]
    )
    status, out = runtime_node.exec(
        container,
        "sh",
        "-c",
        "i=0; while [ $i -lt 30 ]; do sleep 600 & i=$((i+1)); done 2>&1; echo forked $i",
    )
    assert status != 0 and "Resource temporarily unavailable" in out, (status, out)
    assert int(runtime_node.succeed(f"cat {pod}/pids.current")) <= PIDS_LIMIT
    refused = sum(
        int(runtime_node.succeed(f"sed -n 's/^max //p' {path}/pids.events") or 0)
        for path in (pod, f"{CGROUP_ROOT}{cgroup}")
    )
    assert refused > 0
    runtime_node.remove(container)


def test_host_mounts_propagate_into_an_rslave_container(runtime_node: RuntimeNode) -> None:
    """docs/boot-flow.md "Root file system" and docs/kubesolo.md "Runtime": / is rshared,
    so a mount made on the node under a bind-mounted path shows up in a container that
    got the path with rslave propagation (the kubelet's HostToContainer)."""
    vm = runtime_node.machine
    mountinfo = vm.succeed("cat /proc/self/mountinfo")
    assert "shared" in mount_propagation(mountinfo, "/"), mountinfo
    source = f"{guest.RUN_DIR}/propagation-{secrets.token_hex(4)}"
    vm.succeed(f"mkdir -p {source}")
    container = runtime_node.start(
        BUSYBOX_REF,
        "sleep",
        "600",
        cni=False,
        flags=[
            "--rootfs-propagation",
            "rslave",
            "--mount",
            f"type=bind,src={source},dst=/host,options=rbind:rslave",
        ],
    )
    token = secrets.token_hex(8)
    vm.succeed(
        f"mkdir -p {source}/late && mount -t tmpfs tmpfs {source}/late && "
        f"echo {token} > {source}/late/token"
    )
    status, out = runtime_node.exec(container, "cat", "/host/late/token")
    assert (status, out.strip()) == (0, token)
    inside = runtime_node.exec(container, "cat", "/proc/self/mountinfo")[1]
    assert "master" in mount_propagation(inside, "/host/late"), inside
    runtime_node.remove(container)
    vm.succeed(f"umount {source}/late")


def test_imported_images_survive_a_reboot_on_the_data_partition(
    own_runtime_node: RuntimeNode,
) -> None:
    """docs/kubesolo.md "Images" and docs/boot-flow.md "Stage 20 — Persistent Mount":
    containerd's root is on the data partition (<path> is bound from it), so after a
    reboot and a fresh start of containerd the imported images are still listed and a
    container runs from them. Its node is its own: it reboots it."""
    vm = own_runtime_node.machine
    source = {point: src for src, point in guest.BIND_MOUNTS}[guest.KUBESOLO_PATH]
    mounts = vm.succeed("cat /proc/self/mountinfo").splitlines()
    bound = next(line for line in mounts if line.split()[4] == guest.KUBESOLO_PATH)
    assert bound.split()[3] == f"/{source}" and " - ext4 " in bound, bound
    assert ROOT_DIR.startswith(guest.KUBESOLO_PATH + "/")
    before = set(own_runtime_node.succeed(ctr("images", "ls", "-q")).split())
    boot_id = vm.succeed("cat /proc/sys/kernel/random/boot_id")
    vm.reboot()
    vm.wait_for_boot()
    assert vm.succeed("cat /proc/sys/kernel/random/boot_id") != boot_id
    own_runtime_node.bring_up()
    assert set(own_runtime_node.succeed(ctr("images", "ls", "-q")).split()) >= before
    own_runtime_node.run(NGINX_REF, "nginx", "-t")  # exits 0 only with its files intact
    token = secrets.token_hex(8)
    assert own_runtime_node.run(BUSYBOX_REF, "echo", token) == f"{token}\n"
