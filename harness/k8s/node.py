"""One KubeSolo node in a VM: brought up phase by phase, rebooted, asked for
clients, waited on, and dumped when a test fails. The workload steps are its
methods too (harness.k8s.workloads), so the suites read as plain steps."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client as k8s

from harness.k8s import preload
from harness.k8s.api_errors import one_line
from harness.k8s.blockers import pod_blocker, pull_images_missing, restart_counts
from harness.k8s.client import (
    REQUEST_TIMEOUT,
    api_client_from_kubeconfig,
    kubeconfig_of_this_boot,
    parse_stamps,
    rewrite_kubeconfig,
)
from harness.k8s.commands import kubeconfig_stamps_command, kubelet_healthz_command
from harness.k8s.dump import (
    DUMP_FILE,
    failure_dump,
    format_events,
    format_nodes,
    format_pods,
    kubesolo_console_lines,
)
from harness.k8s.errors import KubeBlocked, KubeconfigError, KubeError
from harness.k8s.host import KubeHost
from harness.k8s.image_refs import normalize_image_ref
from harness.k8s.kubesolo import API_PORT, NODE_LEASE_NAMESPACE, SYSTEM_ROLLOUTS
from harness.k8s.predicates import (
    ContainerStarts,
    container_starts,
    node_boot_id,
    node_ready_after_reboot,
    node_ready_since,
    pod_live,
    pod_running,
    restarted_and_ready,
    rollout_complete,
)
from harness.k8s.settings import KubeSettings
from harness.k8s.timings import TIMINGS_FILE, PhaseTimer
from harness.k8s.waits import Budget, wait_for
from harness.k8s.workloads import NodeWorkloads
from harness.log import logger, step
from harness.vm.console import find_failure, find_warnings

log = logger("k8s")
T = TypeVar("T")


class KubeNode(NodeWorkloads):
    """One KubeSolo node in a VM: brings it up, hands out clients, waits, dumps its state."""

    def __init__(
        self,
        machine: KubeHost,
        settings: KubeSettings,
        meta: dict[str, Any] | None = None,
        timer: PhaseTimer | None = None,
    ) -> None:
        """`timer`: the run's, shared by every node of this process (default: one
        of this node's own, in its run directory)."""
        self.machine = machine
        self.settings = settings
        default = PhaseTimer(Path(machine.run_dir) / TIMINGS_FILE, meta=dict(meta or {}))
        self.timer = timer or default
        self.api: Any = None
        self._ports: dict[int, int] = {}
        self._boots = 0
        # normalized refs of the images listed on the node in this boot
        self.present_images: frozenset[str] = frozenset()
        # each container's restartCount before the last reboot, by (pod uid, container)
        self.restarts_before: dict[tuple[str, str], int] = {}
        self.boot_time: datetime | None = None  # this boot's start, by the guest's clock
        self._imported_at: int | None = None  # KubeSolo's restarts when images were imported

    # ---- clients (every call passes _request_timeout=REQUEST_TIMEOUT) ----
    @property
    def core(self) -> Any:
        return k8s.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return k8s.AppsV1Api(self.api)

    @property
    def batch(self) -> Any:
        return k8s.BatchV1Api(self.api)

    @property
    def storage(self) -> Any:
        return k8s.StorageV1Api(self.api)

    @property
    def networking(self) -> Any:
        return k8s.NetworkingV1Api(self.api)

    def host_port(self, guest_port: int) -> int:
        """127.0.0.1 port forwarded to a guest port (asked once per port)."""
        if guest_port not in self._ports:
            self._ports[guest_port] = self.machine.forward_port(guest_port)
        return self._ports[guest_port]

    def _wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """`wait_for`, stopped at once by a failure on the console: when KubeSolo (PID 1)
        exits the kernel panics, and no API will ever answer within the budget."""

        def watched() -> T | None:
            failure = find_failure(self.machine.console_text())
            if failure:
                pattern, match = failure
                raise KubeBlocked(f"{pattern.description} on the console: {match.group(0)}")
            return probe()

        return wait_for(what, watched, timeout)

    # ---- life cycle ----
    def come_up(self) -> None:
        """A started machine, waited on phase by phase to a node with its system
        rollouts done: the "up" of the run's Ready node (docs/kubesolo.md "Shared node")."""
        with step(log, "KubeSolo node bring-up"):
            self.timer.begin("boot")
            self.host_port(API_PORT)
            self._come_up(old_boot_id=None)

    def attach(self, restored_at: float | None = None) -> None:
        """Drive a node that is up already: the run's shared node, or one restored from
        the snapshot of a Ready node (`restored_at`: when, on the host's clock, to which
        the guest's clock jumped). Its kubeconfig and API, the images it holds, a Ready
        node (after a restore: with a lease the kubelet renewed since), the rollouts."""
        with step(log, "KubeSolo node attach"):
            self.timer.begin("restore" if restored_at else "attach")
            budget = Budget(self.settings.timeout)
            self.host_port(API_PORT)
            self._connect(budget, this_boot_only=False)
            self._list_images()
            since = datetime.fromtimestamp(restored_at, UTC) if restored_at else None
            self._wait("node Ready", lambda: self._ready_since(since), budget.remaining())
            self.timer.mark("node_ready")
            for namespace, name in SYSTEM_ROLLOUTS:
                self.wait_rollout(namespace, name, timeout=budget.remaining())
            self.timer.mark("rollouts")

    def reboot(self) -> None:
        """Clean reboot from the guest; back when the *new* boot's kubelet reports Ready."""
        old = node_boot_id(self.node())
        before = {d: container_starts(self.deployment_pods(*d)) for d in SYSTEM_ROLLOUTS}
        self.restarts_before = restart_counts(self._all_pods())  # blockers.START_REPEATS
        self._boots += 1
        with step(log, f"KubeSolo node reboot {self._boots}"):
            self.timer.begin(f"reboot-{self._boots}")
            self.machine.reboot()
            self._come_up(old_boot_id=old, before=before)

    def _come_up(
        self,
        old_boot_id: str | None,
        before: Mapping[tuple[str, str], ContainerStarts] | None = None,
    ) -> None:
        """Phase by phase to a usable node; after a reboot (`before` given) the system
        rollouts count only once their pods run containers started by the new boot.

        Images are imported after every boot, since each start of KubeSolo wipes side-loaded
        ones (docs/kubesolo.md "Images"), and only once the system rollouts are done: until
        then KubeSolo is deploying CoreDNS and local-path under short request deadlines, and
        an import would take the CPUs they need under TCG. Pods the kubelet restarts from the
        stored state (nginx after a reboot) find the images on their next pull. What an
        earlier boot listed is stale: the blockers start this boot knowing no image."""
        self.present_images = frozenset()
        self._imported_at = None
        self.machine.wait_for_boot()
        budget = Budget(self.settings.timeout)  # KubeSolo's own start, after the OS boot
        self.timer.mark("boot")
        self._connect(budget)
        self.timer.mark("api")
        self._wait("kubelet /healthz", self._kubelet_healthy, budget.remaining())
        self.timer.mark("kubelet_healthz")
        self._wait("node Ready", lambda: self._fresh_ready_node(old_boot_id), budget.remaining())
        self.timer.mark("node_ready")
        if old_boot_id is None:  # after a reboot, pod phases are stale until the kubelet syncs
            self._wait("first pod Running", self._any_running_pod, budget.remaining())
            self.timer.mark("first_pod_running")
        for namespace, name in SYSTEM_ROLLOUTS:
            self.wait_rollout(namespace, name, timeout=budget.remaining())
            if before is not None:
                self.wait_restarted(namespace, name, before[namespace, name], budget.remaining())
            self.timer.mark(f"{name}_rollout")
        self.import_images()

    def wait_restarted(
        self, namespace: str, name: str, before: ContainerStarts, timeout: float | None = None
    ) -> list[Any]:
        """Wait until every live pod of a Deployment is Ready with containers started after
        the picture `before` (a reboot, deleted pods); returns those pods."""

        def probe() -> list[Any] | None:
            pods = self.deployment_pods(namespace, name)
            return [p for p in pods if pod_live(p)] if restarted_and_ready(pods, before) else None

        what = f"pods of {namespace}/{name} restarted"
        return self._wait(what, probe, timeout or self.settings.timeout)

    def deployment_pods(self, namespace: str, name: str) -> list[Any]:
        """The pods a Deployment selects."""
        deployment = self.apps.read_namespaced_deployment(
            name, namespace, _request_timeout=REQUEST_TIMEOUT
        )
        return self._pods(namespace, deployment.spec.selector.match_labels or {})

    def _connect(self, budget: Budget, this_boot_only: bool = True) -> None:
        """Kubeconfig exists only once the API passed /healthz; then the API must answer.
        `this_boot_only=False`: a node that is up already, whose kubeconfig its bring-up
        saw written (after a restore, the clock step moves the boot time past it)."""
        read = self._kubeconfig if this_boot_only else lambda: self._kubeconfig(any_boot=True)
        config = self._wait("admin kubeconfig", read, budget.remaining())
        self.api = api_client_from_kubeconfig(config)
        version = k8s.VersionApi(self.api)
        self._wait(
            "API /version",
            lambda: version.get_code(_request_timeout=REQUEST_TIMEOUT),
            budget.remaining(),
        )

    def _kubeconfig(self, any_boot: bool = False) -> dict[str, Any] | None:
        """The rewritten admin kubeconfig, or None while there is none of this boot or only
        part of one: KubeSolo rewrites the file (truncate, write) on every start, and after a
        reboot the previous boot's copy is still there until it does."""
        status, output = self.machine.execute(kubeconfig_stamps_command(), timeout=30)
        stamps = parse_stamps(output) if status == 0 else None
        if stamps is None or not (any_boot or kubeconfig_of_this_boot(*stamps)):
            return None
        self.boot_time = datetime.fromtimestamp(stamps[1], UTC)
        try:
            return rewrite_kubeconfig(self.machine.kubeconfig(), self.host_port(API_PORT))
        except (KubeconfigError, yaml.YAMLError):
            return None

    def _kubelet_healthy(self) -> bool | None:
        status, output = self.machine.execute(kubelet_healthz_command(), timeout=30)
        return True if status == 0 and output.strip() == "ok" else None

    def _fresh_ready_node(self, old_boot_id: str | None) -> Any:
        nodes = self.core.list_node(_request_timeout=REQUEST_TIMEOUT).items
        ready = [n for n in nodes if node_ready_after_reboot(n, old_boot_id)]
        return ready[0] if ready else None

    def _ready_since(self, since: datetime | None) -> Any:
        node = self.node()
        lease = None
        if since is not None:
            lease = k8s.CoordinationV1Api(self.api).read_namespaced_lease(
                node.metadata.name, NODE_LEASE_NAMESPACE, _request_timeout=REQUEST_TIMEOUT
            )
        return node if node_ready_since(node, lease, since) else None

    def _all_pods(self) -> list[Any]:
        return list(self.core.list_pod_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT).items)

    def _any_running_pod(self) -> Any:
        return next((p for p in self._all_pods() if pod_running(p)), None)

    # ---- images ----
    def _list_images(self) -> None:
        """Learn which images the node has now (one `ctr images ls`)."""
        listed = preload.listed_images(self.machine)
        self.present_images = frozenset(normalize_image_ref(ref) for ref in listed)

    def _kubesolo_restarts(self) -> int:
        """How many times init has started KubeSolo again, by the console (all boots)."""
        warnings = find_warnings(self.machine.console_text())
        return sum(1 for pattern, _ in warnings if pattern.name == "kubesolo-restart")

    def _restarted_since_import(self) -> bool:
        """Did init restart KubeSolo after this boot's import? A start wipes side-loaded
        images (docs/kubesolo.md "Images"), so they are imported again."""
        return self._imported_at is not None and self._kubesolo_restarts() > self._imported_at

    def import_images(self) -> list[str]:
        """Import --kubesolo-images with ctr into this boot's containerd (after the system
        rollouts: see _come_up)."""
        if self.settings.images_dir is None:
            return []
        with step(log, f"import images from {self.settings.images_dir}"):
            names, present = preload.import_images(
                self.machine,
                self.settings.images_dir,
                wanted=(self.settings.nginx_image, self.settings.busybox_image),
                busybox_ref=self.settings.busybox_image,
                timeout=max(600.0, self.settings.timeout),
            )
        self.present_images = frozenset(normalize_image_ref(ref) for ref in present)
        self._imported_at = self._kubesolo_restarts()
        self.timer.mark("images_imported")
        return names

    # ---- the node's state ----
    def node(self) -> Any:
        nodes = self.core.list_node(_request_timeout=REQUEST_TIMEOUT).items
        if len(nodes) != 1:
            raise KubeError(f"expected one KubeSolo node, the API lists {len(nodes)}")
        return nodes[0]

    def wait_rollout(self, namespace: str, name: str, timeout: float | None = None) -> Any:
        def probe() -> Any:
            deployment = self.apps.read_namespaced_deployment(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            )
            if rollout_complete(deployment):
                return deployment
            labels = deployment.spec.selector.match_labels or {}
            self._raise_if_blocked(namespace, self._pods(namespace, labels))
            return None

        return self._wait(f"rollout of {namespace}/{name}", probe, timeout or self.settings.timeout)

    def _pods(self, namespace: str, labels: Mapping[str, str]) -> list[Any]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return list(
            self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
            ).items
        )

    def _raise_if_blocked(self, namespace: str, pods: Sequence[Any]) -> None:
        """KubeBlocked when one of these pods can never start (blockers.pod_blocker). A pull
        back-off on an image not known to be there is checked on the node first: before the
        import (system rollouts) the node may well have it, from KubeSolo's own import."""
        if not pods:
            return
        events = self.core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=Pod", _request_timeout=REQUEST_TIMEOUT
        ).items
        if any(pull_images_missing(pod, self.present_images) for pod in pods):
            self._list_images()
            if self._restarted_since_import():
                self.import_images()  # that start of KubeSolo wiped them
        now = datetime.now(UTC)
        for pod in pods:
            reason = pod_blocker(
                pod,
                self.present_images,
                events,
                self.boot_time,
                now=now,
                restarts_before=self.restarts_before,
            )
            if reason:
                raise KubeBlocked(reason)

    # ---- diagnostics ----
    def dump(self) -> str:
        """Node conditions, pod states, events and KubeSolo's console lines, as text."""
        core = self.core
        sections = {
            "node conditions": self._section(
                lambda: format_nodes(core.list_node(_request_timeout=REQUEST_TIMEOUT).items)
            ),
            "pods": self._section(
                lambda: format_pods(
                    core.list_pod_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT).items
                )
            ),
            "events": self._section(
                lambda: format_events(
                    core.list_event_for_all_namespaces(_request_timeout=REQUEST_TIMEOUT).items
                )
            ),
            "KubeSolo console": self._section(
                lambda: kubesolo_console_lines(self.machine.console_text()), needs_api=False
            ),
        }
        return failure_dump(sections)

    def _section(self, collect: Callable[[], list[str]], needs_api: bool = True) -> list[str]:
        if needs_api and self.api is None:
            return ["(no API client: the kubeconfig was never read)"]
        try:
            return collect()
        except Exception as error:  # a dump must never hide the real failure
            return [f"(unavailable: {one_line(error)})"]

    def save_dump(self) -> Path:
        path = Path(self.machine.run_dir) / DUMP_FILE
        path.write_text(self.dump(), encoding="utf-8")
        return path
