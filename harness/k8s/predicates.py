"""Readiness predicates over `kubernetes` client model objects: pure functions
the waits poll, so each rule is unit-tested on real model objects."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from harness.k8s.kubesolo import DEFAULT_CLASS_ANNOTATION, NODE_DOWN_TAINTS


def condition_status(conditions: Iterable[Any] | None, kind: str) -> str | None:
    """Status ("True"/"False"/"Unknown") of the condition of this type, None if absent."""
    for condition in conditions or ():
        if condition.type == kind:
            return str(condition.status)
    return None


# ---- nodes ----
def node_ready(node: Any) -> bool:
    return condition_status(node.status and node.status.conditions, "Ready") == "True"


def node_boot_id(node: Any) -> str | None:
    """The kubelet reports the kernel's boot id: it tells a fresh status from a stale one."""
    info = node.status and node.status.node_info
    return info.boot_id if info else None


def node_addresses(node: Any, kind: str = "InternalIP") -> set[str]:
    """The node's addresses of one type, as the kubelet reports them."""
    addresses = (node.status and node.status.addresses) or []
    return {a.address for a in addresses if a.type == kind}


def node_ready_after_reboot(node: Any, old_boot_id: str | None) -> bool:
    """Ready as reported by the new boot: a node object keeps Ready=True across a reboot."""
    return node_ready(node) and node_boot_id(node) not in (None, old_boot_id)


def node_ready_since(node: Any, lease: Any, since: datetime | None) -> bool:
    """Ready, without the node controller's taints of a node gone quiet, and after a
    restore (`since`) with its lease renewed since then: the Ready condition saved in
    a snapshot stays True until the node controller notices the missed heartbeats."""
    taints = (node.spec and node.spec.taints) or []
    if not node_ready(node) or any(t.key in NODE_DOWN_TAINTS for t in taints):
        return False
    if since is None:
        return True
    renewed = lease and lease.spec and lease.spec.renew_time
    return bool(renewed) and renewed >= since


# ---- Deployments ----
def rollout_complete(deployment: Any) -> bool:
    """The same rule as `kubectl rollout status`: observed, updated, no old pods, available."""
    status = deployment.status
    if status is None:
        return False
    wanted = 1 if deployment.spec.replicas is None else deployment.spec.replicas
    updated = status.updated_replicas or 0
    return (
        (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        and updated >= wanted
        and (status.replicas or 0) <= updated
        and (status.available_replicas or 0) >= updated
    )


# pod uid -> container name -> when its running container started (None: not running)
ContainerStarts = dict[str, dict[str, datetime | None]]


def container_starts(pods: Iterable[Any]) -> ContainerStarts:
    """When each pod's containers started: the picture to compare with after a reboot."""
    return {
        pod.metadata.uid: {
            status.name: status.state.running.started_at
            if status.state and status.state.running
            else None
            for status in (pod.status and pod.status.container_statuses) or []
        }
        for pod in pods
    }


def restarted_and_ready(pods: Sequence[Any], before: ContainerStarts) -> bool:
    """Every live pod Ready with each container started after the picture `before`: the API
    server keeps a pod's Ready=True from before a reboot until the kubelet syncs it.
    Finished pods (an old ReplicaSet's leftovers) and pods being deleted never restart:
    they do not count."""
    live = [pod for pod in pods if pod_live(pod)]
    now = container_starts(live)
    for pod in live:
        old = before.get(pod.metadata.uid, {})
        for name, started in now[pod.metadata.uid].items():
            previous = old.get(name)
            if started is None or (previous is not None and started <= previous):
                return False
    return bool(live) and all(pod_ready(pod) for pod in live)


# ---- pods, Jobs, volumes ----
def pod_phase(pod: Any) -> str | None:
    return pod.status.phase if pod.status else None


def pod_running(pod: Any) -> bool:
    return pod_phase(pod) == "Running"


def pod_succeeded(pod: Any) -> bool:
    return pod_phase(pod) == "Succeeded"


def pod_finished(pod: Any) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def pod_live(pod: Any) -> bool:
    """Neither finished nor being deleted: a pod its controller still counts on."""
    return not pod_finished(pod) and pod.metadata.deletion_timestamp is None


def pod_ready(pod: Any) -> bool:
    return condition_status(pod.status and pod.status.conditions, "Ready") == "True"


def job_complete(job: Any) -> bool:
    status = job.status
    return bool(status) and (
        condition_status(status.conditions, "Complete") == "True" or (status.succeeded or 0) > 0
    )


def job_failed(job: Any) -> bool:
    return bool(job.status) and condition_status(job.status.conditions, "Failed") == "True"


def pvc_bound(pvc: Any) -> bool:
    return bool(pvc.status and pvc.status.phase == "Bound")


def storage_class_is_default(storage_class: Any) -> bool:
    annotations = storage_class.metadata.annotations or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


def pv_host_path(pv: Any) -> str | None:
    """Where a local-path volume lives on the node (hostPath or local volume type)."""
    spec = pv.spec
    source = spec.host_path or spec.local
    return source.path if source else None
