"""Readiness predicates on real `kubernetes` model objects: nodes, rollouts, reboots,
pods that can never start, Jobs, volumes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kube_fakes import deployment, node, pod, system_pod
from kubernetes import client as k8s

from harness.k8s.kubesolo import DEFAULT_CLASS_ANNOTATION, LOCAL_PATH_ROOT
from harness.k8s.predicates import (
    ContainerStarts,
    container_starts,
    job_complete,
    job_failed,
    node_addresses,
    node_boot_id,
    node_ready,
    node_ready_after_reboot,
    node_ready_since,
    pod_finished,
    pod_ready,
    pod_running,
    pod_succeeded,
    pv_host_path,
    pvc_bound,
    restarted_and_ready,
    rollout_complete,
    storage_class_is_default,
)


class TestNodePredicates:
    @pytest.mark.parametrize(
        ("ready", "expected"), [("True", True), ("False", False), ("Unknown", False), (None, False)]
    )
    def test_ready_condition(self, ready: str | None, expected: bool) -> None:
        assert node_ready(node(ready)) is expected

    def test_node_without_status_is_not_ready(self) -> None:
        assert not node_ready(k8s.V1Node(metadata=k8s.V1ObjectMeta(name="n")))

    def test_internal_addresses(self) -> None:
        n = node("True")
        n.status.addresses = [
            k8s.V1NodeAddress(type="InternalIP", address="10.0.2.15"),
            k8s.V1NodeAddress(type="Hostname", address="kubesolo-abc123"),
        ]
        assert node_addresses(n) == {"10.0.2.15"}
        assert node_addresses(n, "Hostname") == {"kubesolo-abc123"}
        assert node_addresses(node("True")) == set()

    def test_boot_id(self) -> None:
        assert node_boot_id(node("True", "abc")) == "abc"
        assert node_boot_id(node("True", None)) is None

    @pytest.mark.parametrize(
        ("ready", "boot_id", "old", "expected"),
        [
            ("True", "boot-2", "boot-1", True),
            ("True", "boot-1", "boot-1", False),  # stale Ready from before the reboot
            ("False", "boot-2", "boot-1", False),
            ("True", None, "boot-1", False),
            ("True", "boot-1", None, True),  # first boot: any Ready counts
        ],
    )
    def test_ready_after_reboot(
        self, ready: str, boot_id: str | None, old: str | None, expected: bool
    ) -> None:
        assert node_ready_after_reboot(node(ready, boot_id), old) is expected

    RESTORED = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)

    @staticmethod
    def lease(renewed: datetime | None) -> k8s.V1Lease:
        return k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name="kubesolo-abc123", namespace="kube-node-lease"),
            spec=k8s.V1LeaseSpec(holder_identity="kubesolo-abc123", renew_time=renewed),
        )

    @pytest.mark.parametrize(
        ("ready", "taints", "renewed", "expected"),
        [
            ("True", [], datetime(2026, 11, 27, 4, 0, 5, tzinfo=UTC), True),
            ("True", [], datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC), True),
            # the snapshot's Ready: the kubelet has not renewed its lease since the restore
            ("True", [], datetime(2026, 11, 27, 3, 12, 0, tzinfo=UTC), False),
            ("True", [], None, False),
            ("False", [], datetime(2026, 11, 27, 4, 0, 5, tzinfo=UTC), False),
            # the node controller noticed the missed heartbeats: Ready again once untainted
            (
                "True",
                ["node.kubernetes.io/unreachable"],
                datetime(2026, 11, 27, 4, 0, 5, tzinfo=UTC),
                False,
            ),
            ("True", ["node.kubernetes.io/not-ready"], None, False),
            ("True", ["example.com/mine"], datetime(2026, 11, 27, 4, 0, 5, tzinfo=UTC), True),
        ],
    )
    def test_ready_since_a_restore(
        self, ready: str, taints: list[str], renewed: datetime | None, expected: bool
    ) -> None:
        restored = node(ready)
        restored.spec = k8s.V1NodeSpec(
            taints=[k8s.V1Taint(key=key, effect="NoExecute") for key in taints]
        )
        assert node_ready_since(restored, self.lease(renewed), self.RESTORED) is expected

    def test_ready_without_a_restore_needs_no_lease(self) -> None:
        assert node_ready_since(node("True"), None, None)
        assert not node_ready_since(node("Unknown"), None, None)


class TestRollout:
    @pytest.mark.parametrize(
        ("dep", "expected"),
        [
            (deployment(), True),
            (deployment(wanted=None), True),  # spec default is one replica
            (deployment(observed_generation=1), False),  # controller has not seen the spec
            (deployment(updated_replicas=0), False),
            (deployment(wanted=2, replicas=2, available_replicas=1), False),
            (deployment(wanted=2, replicas=2, updated_replicas=2, available_replicas=2), True),
            (deployment(replicas=2), False),  # an old pod still terminating
            (deployment(available_replicas=0), False),
            (deployment(available_replicas=None), False),
        ],
    )
    def test_rollout_complete(self, dep: k8s.V1Deployment, expected: bool) -> None:
        assert rollout_complete(dep) is expected

    def test_no_status_yet(self) -> None:
        dep = deployment()
        dep.status = None
        assert not rollout_complete(dep)


class TestRestartedAfterReboot:
    BEFORE_REBOOT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    AFTER_REBOOT = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)

    def before(self) -> ContainerStarts:
        return container_starts([system_pod("u1", self.BEFORE_REBOOT)])

    def test_the_picture_records_each_containers_start(self) -> None:
        assert self.before() == {"u1": {"coredns": self.BEFORE_REBOOT}}
        assert container_starts([system_pod("u2", None)]) == {"u2": {"coredns": None}}

    @pytest.mark.parametrize(
        ("pods", "expected"),
        [
            ([system_pod("u1", BEFORE_REBOOT)], False),  # stale status from before the reboot
            ([system_pod("u1", None, ready=False)], False),  # not running yet
            ([system_pod("u1", AFTER_REBOOT, ready=False)], False),  # started, not Ready
            ([system_pod("u1", AFTER_REBOOT)], True),  # restarted by the new boot
            ([system_pod("u9", AFTER_REBOOT)], True),  # a replacement pod
            ([system_pod("u1", AFTER_REBOOT), system_pod("u2", None)], False),
            ([], False),  # no pod at all is no rollout
            # leftovers of an old ReplicaSet never restart: they do not count
            ([system_pod("u1", AFTER_REBOOT), system_pod("u0", None, phase="Succeeded")], True),
            ([system_pod("u1", AFTER_REBOOT), system_pod("u0", None, phase="Failed")], True),
            (
                [system_pod("u9", AFTER_REBOOT), system_pod("u1", BEFORE_REBOOT, deleting=True)],
                True,
            ),
            ([system_pod("u0", None, phase="Failed", ready=False)], False),  # nothing live
            ([system_pod("u1", BEFORE_REBOOT, deleting=True)], False),
        ],
    )
    def test_only_pods_restarted_by_the_new_boot_count(
        self, pods: list[Any], expected: bool
    ) -> None:
        assert restarted_and_ready(pods, self.before()) is expected


class TestPodAndFriends:
    @pytest.mark.parametrize(
        ("phase", "running", "succeeded", "finished"),
        [
            ("Pending", False, False, False),
            ("Running", True, False, False),
            ("Succeeded", False, True, True),
            ("Failed", False, False, True),
            (None, False, False, False),
        ],
    )
    def test_phases(self, phase: str, running: bool, succeeded: bool, finished: bool) -> None:
        p = pod(phase)
        assert (pod_running(p), pod_succeeded(p), pod_finished(p)) == (
            running,
            succeeded,
            finished,
        )

    def test_pod_ready_condition(self) -> None:
        p = pod("Running")
        p.status.conditions = [k8s.V1PodCondition(type="Ready", status="True")]
        assert pod_ready(p)
        assert not pod_ready(pod("Running"))

    @pytest.mark.parametrize(("phase", "expected"), [("Bound", True), ("Pending", False)])
    def test_pvc_bound(self, phase: str, expected: bool) -> None:
        pvc = k8s.V1PersistentVolumeClaim(status=k8s.V1PersistentVolumeClaimStatus(phase=phase))
        assert pvc_bound(pvc) is expected
        assert not pvc_bound(k8s.V1PersistentVolumeClaim())

    def test_job_complete_and_failed(self) -> None:
        def job(conditions: list[tuple[str, str]], succeeded: int | None = None) -> k8s.V1Job:
            items = [k8s.V1JobCondition(type=t, status=s) for t, s in conditions]
            return k8s.V1Job(status=k8s.V1JobStatus(conditions=items, succeeded=succeeded))

        assert job_complete(job([("Complete", "True")]))
        assert job_complete(job([], succeeded=1))
        assert not job_complete(job([]))
        assert not job_complete(k8s.V1Job())
        assert job_failed(job([("Failed", "True")]))
        assert not job_failed(job([("Complete", "True")]))

    def test_default_storage_class(self) -> None:
        def sc(annotations: dict[str, str] | None) -> k8s.V1StorageClass:
            meta = k8s.V1ObjectMeta(name="local-path", annotations=annotations)
            return k8s.V1StorageClass(metadata=meta, provisioner="rancher.io/local-path")

        assert storage_class_is_default(sc({DEFAULT_CLASS_ANNOTATION: "true"}))
        assert not storage_class_is_default(sc({DEFAULT_CLASS_ANNOTATION: "false"}))
        assert not storage_class_is_default(sc(None))

    def test_pv_path_for_hostpath_and_local_volumes(self) -> None:
        path = f"{LOCAL_PATH_ROOT}/pvc-1_t-1_data"
        host = k8s.V1PersistentVolume(
            spec=k8s.V1PersistentVolumeSpec(host_path=k8s.V1HostPathVolumeSource(path=path))
        )
        local = k8s.V1PersistentVolume(
            spec=k8s.V1PersistentVolumeSpec(local=k8s.V1LocalVolumeSource(path=path))
        )
        assert pv_host_path(host) == pv_host_path(local) == path
        assert pv_host_path(k8s.V1PersistentVolume(spec=k8s.V1PersistentVolumeSpec())) is None
