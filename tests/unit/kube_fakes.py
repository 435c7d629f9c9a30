"""Shared fakes of the Kubernetes unit tests (tests/unit/test_kube_*.py): model objects
shaped like a KubeSolo node's, a kubeconfig like the one it writes, a recording machine."""

from __future__ import annotations

import base64
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client as k8s

from harness.k8s.kubesolo import CONTAINERD_SOCKETS

SAMPLE_VALUES = {
    "NGINX_IMAGE": "sentinel/nginx:1",
    "BUSYBOX_IMAGE": "sentinel/busybox:1",
    "NAME": "probe-1",
    "ACCESS": "allowed",
    "URL": "http://10.43.0.5/",
    "SETTLE": 0,
    "ATTEMPTS": 3,
    "LOOKUP": "kubernetes.default.svc.cluster.local",
    "EXPECT_IP": "10.43.0.1",
    "PAYLOAD": "0123abcd",
    "NODE_PORT": 30080,
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubesolo_kubeconfig(server: str = "https://127.0.0.1:6443", extra: str = "") -> str:
    """Shaped like the file KubeSolo writes (pkg/kubernetes/apiserver/kubeconfig.go)."""
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - name: kubesolo
          cluster:
            server: {server}
            certificate-authority-data: {b64("CA")}
            {extra}
        users:
        - name: kubernetes-admin
          user:
            client-certificate-data: {b64("CERT")}
            client-key-data: {b64("KEY")}
        - name: admin-token
          user:
            token: admin-token
        contexts:
        - name: admin-token@kubesolo
          context: {{cluster: kubesolo, user: admin-token}}
        - name: kubernetes-admin@kubesolo
          context: {{cluster: kubesolo, user: kubernetes-admin}}
        current-context: admin-token@kubesolo
        """
    )


def node(ready: str | None, boot_id: str | None = "boot-1") -> Any:
    conditions = [k8s.V1NodeCondition(type="MemoryPressure", status="False")]
    if ready is not None:
        conditions.append(k8s.V1NodeCondition(type="Ready", status=ready, reason="KubeletReady"))
    info = None
    if boot_id is not None:
        info = k8s.V1NodeSystemInfo(
            architecture="amd64",
            boot_id=boot_id,
            container_runtime_version="containerd://2",
            kernel_version="6.1",
            kube_proxy_version="",
            kubelet_version="v1.34",
            machine_id="m",
            operating_system="linux",
            os_image="KubeSolo OS",
            system_uuid="u",
        )
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(name="kubesolo-abc123"),
        status=k8s.V1NodeStatus(conditions=conditions, node_info=info),
    )


def deployment(
    wanted: int | None = 1, generation: int = 2, **status: int | None
) -> k8s.V1Deployment:
    defaults = {
        "observed_generation": 2,
        "replicas": 1,
        "updated_replicas": 1,
        "available_replicas": 1,
    }
    merged: dict[str, Any] = {**defaults, **status}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="coredns", namespace="kube-system", generation=generation),
        spec=k8s.V1DeploymentSpec(
            replicas=wanted,
            selector=k8s.V1LabelSelector(match_labels={"k8s-app": "coredns"}),
            template=k8s.V1PodTemplateSpec(),
        ),
        status=k8s.V1DeploymentStatus(**merged),
    )


def pod(phase: str | None = "Pending", waiting: str | None = None) -> Any:
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting, message="pull failed")
        if waiting
        else None,
        running=None if waiting else k8s.V1ContainerStateRunning(),
    )
    statuses = [
        k8s.V1ContainerStatus(
            name="nginx",
            image="docker.io/library/nginx:stable",
            image_id="",
            ready=False,
            restart_count=0,
            state=state,
        )
    ]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="web", namespace="t-1"),
        spec=k8s.V1PodSpec(containers=[], node_name="kubesolo-abc123"),
        status=k8s.V1PodStatus(phase=phase, container_statuses=statuses),
    )


def system_pod(
    uid: str,
    started: datetime | None,
    ready: bool = True,
    phase: str = "Running",
    deleting: bool = False,
) -> Any:
    """A CoreDNS-like pod whose one container runs since `started` (None: not running)."""
    state = k8s.V1ContainerState(
        running=k8s.V1ContainerStateRunning(started_at=started) if started else None,
        waiting=None if started else k8s.V1ContainerStateWaiting(reason="ContainerCreating"),
    )
    status = k8s.V1ContainerStatus(
        name="coredns", image="coredns", image_id="", ready=ready, restart_count=0, state=state
    )
    condition = k8s.V1PodCondition(type="Ready", status="True" if ready else "False")
    deleted = datetime(2026, 11, 25, 10, 6, tzinfo=UTC) if deleting else None
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(
            name="coredns-1", namespace="kube-system", uid=uid, deletion_timestamp=deleted
        ),
        status=k8s.V1PodStatus(phase=phase, conditions=[condition], container_statuses=[status]),
    )


def event(minute: int | None, reason: str, count: int = 1) -> k8s.CoreV1Event:
    stamp = None if minute is None else datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(namespace="kube-system", creation_timestamp=None),
        involved_object=k8s.V1ObjectReference(kind="Pod", name="coredns-1"),
        type="Warning",
        reason=reason,
        message=f"{reason} happened\n",
        count=count,
        last_timestamp=stamp,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def no_sleep(_: float) -> None:
    return None


class FakeMachine:
    """Records guest commands; answers the few the image import asks."""

    def __init__(self, run_dir: Path, console: str = "", images: str = "") -> None:
        self.run_dir = run_dir
        self.console = console
        self.images = images
        self.commands: list[str] = []
        self.kubeconfigs: list[str] = []  # what successive machine.kubeconfig() calls return
        self.power: list[str] = []  # start, wait_for_boot, reboot, in the order asked
        self.stamps = "1764150000\n1764149000\n"  # kubeconfig mtime, boot time: this boot's

    def start(self) -> None:
        self.power.append("start")

    def wait_for_boot(self, timeout: float | None = None) -> None:
        self.power.append("wait_for_boot")

    def reboot(self) -> None:
        self.power.append("reboot")

    def succeed(self, command: str, timeout: float = 0) -> str:
        self.commands.append(command)
        if command.startswith("for s in"):
            return f"{CONTAINERD_SOCKETS[0]}\n"
        if command.endswith("images ls -q"):
            return self.images
        return ""

    def console_text(self, since: object = None) -> str:
        return self.console

    def forward_port(self, guest_port: int) -> int:
        return 40000 + guest_port

    def execute(self, command: str, timeout: float = 0) -> tuple[int, str]:
        """Answers the kubeconfig's stamps: `stat` fails while there is no file."""
        self.commands.append(command)
        return (0, self.stamps) if self.kubeconfigs else (1, "")

    def kubeconfig(self) -> str:
        return self.kubeconfigs.pop(0)
