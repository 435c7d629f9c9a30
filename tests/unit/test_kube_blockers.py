"""Pods that can never start stop a wait at once, with one line that says why; pods that
still might (creating, a back-off the next pull ends, a first start failure, a pod the
webhook may still place, an old boot's events) do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kube_fakes import pod
from kubernetes import client as k8s

from harness.k8s.blockers import (
    BLOCKING_WAIT_REASONS,
    IMAGE_HINT,
    UNSCHEDULED_MARGIN,
    WEBHOOK_TIMEOUT,
    image_hint,
    pod_blocker,
    pull_images_missing,
    restart_counts,
)
from harness.k8s.image_refs import image_repository

THIS_BOOT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:stable"


def terminated(reason: str, message: str = "") -> Any:
    return k8s.V1ContainerStateTerminated(exit_code=128, reason=reason, message=message)


def crash_loop(
    last_reason: str, message: str = "", restarts: int = 0, waiting: str = "CrashLoopBackOff"
) -> Any:
    """A pod whose container waits (`waiting`) after a termination with `last_reason`;
    `restarts`: the restartCount of that latest instance."""
    p = pod(waiting=waiting)
    status = p.status.container_statuses[0]
    status.last_state = k8s.V1ContainerState(terminated=terminated(last_reason, message))
    status.restart_count = restarts
    return p


def with_memory_limit(p: Any, limit: str) -> Any:
    resources = k8s.V1ResourceRequirements(limits={"memory": limit, "cpu": "100m"})
    p.spec.containers = [k8s.V1Container(name="nginx", image=NGINX, resources=resources)]
    return p


def oom_now() -> Any:
    """A container whose current state is its OOM kill (not yet waiting to restart)."""
    p = pod(phase="Running")
    p.status.container_statuses[0].state = k8s.V1ContainerState(terminated=terminated("OOMKilled"))
    return p


def running_after(last_reason: str) -> Any:
    p = crash_loop(last_reason, restarts=1)
    p.status.container_statuses[0].state = k8s.V1ContainerState(
        running=k8s.V1ContainerStateRunning()
    )
    return p


def sandbox_event(count: int, minute: int = 5, uid: str | None = "uid-web") -> Any:
    return k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(namespace="t-1"),
        involved_object=k8s.V1ObjectReference(kind="Pod", name="web", uid=uid),
        reason="FailedCreatePodSandBox",
        message="failed to create containerd task: pivot_root: invalid argument\nmore",
        count=count,
        type="Warning",
        last_timestamp=THIS_BOOT.replace(minute=minute),
    )


def with_uid(p: Any) -> Any:
    p.metadata.uid = "uid-web"
    return p


PIVOT = "failed to create shim task: pivot_root invalid argument"
# (pod, events, words the one line must hold | None: not blocked)
TABLE = [
    (pod(waiting="ImagePullBackOff"), [], "ImagePullBackOff: image cannot be pulled; preload it"),
    (pod(waiting="ErrImageNeverPull"), [], "ErrImageNeverPull: image not on the node"),
    (pod(waiting="InvalidImageName"), [], "InvalidImageName: image name is invalid"),
    (pod(waiting="CreateContainerConfigError"), [], "container config is invalid"),
    # start failures: only a repeat blocks (under TCG one crun create may time out)
    (pod(waiting="RunContainerError"), [], None),
    (crash_loop("StartError", PIVOT, waiting="RunContainerError"), [], None),
    (crash_loop("StartError", PIVOT), [], None),  # restartCount 0: the first instance's
    (
        crash_loop("StartError", PIVOT, restarts=1),
        [],
        f"CrashLoopBackOff after StartError: never started, 2 tries in this boot: {PIVOT}",
    ),
    (
        crash_loop("StartError", PIVOT, restarts=1, waiting="RunContainerError"),
        [],
        "RunContainerError after StartError: never started, 2 tries",
    ),
    (crash_loop("ContainerCannotRun", restarts=3), [], "after ContainerCannotRun: never started"),
    (crash_loop("Error", restarts=5), [], None),  # its program exited: it may start next time
    (crash_loop("Completed", restarts=5), [], None),
    # out of memory, and not running now: the next instance has the same limit
    (
        with_memory_limit(crash_loop("OOMKilled"), "20Mi"),
        [],
        "OOMKilled: out of memory at its 20Mi memory limit",
    ),
    (crash_loop("OOMKilled"), [], "OOMKilled with no memory limit: the node ran out of memory"),
    (with_memory_limit(oom_now(), "64Mi"), [], "out of memory at its 64Mi memory limit"),
    (crash_loop("OOMKilled", waiting="ContainerCreating"), [], "OOMKilled"),
    (running_after("OOMKilled"), [], None),  # it runs again: not (yet) blocked
    (running_after("StartError"), [], None),
    (with_uid(pod()), [sandbox_event(3)], "FailedCreatePodSandBox x3: its sandbox cannot be"),
    (with_uid(pod()), [sandbox_event(7, uid=None)], "FailedCreatePodSandBox x7"),
    (with_uid(pod()), [sandbox_event(2)], None),  # may be start-up noise
    (with_uid(pod()), [sandbox_event(9, uid="uid-other")], None),  # another pod's
    (pod(waiting="ContainerCreating"), [], None),
    (pod(waiting="PodInitializing"), [], None),
    (pod(waiting=None), [], None),
]


@pytest.mark.parametrize(("p", "events", "words"), TABLE)
def test_blockers(p: Any, events: list[Any], words: str | None) -> None:
    message = pod_blocker(p, (), events, since=THIS_BOOT)
    if words is None:
        assert message is None
        return
    assert message is not None and words in message
    assert message.startswith("pod t-1/web")
    assert "\n" not in message


@pytest.mark.parametrize("reason", sorted(BLOCKING_WAIT_REASONS))
def test_blocking_reasons_name_pod_container_and_image(reason: str) -> None:
    message = pod_blocker(pod(waiting=reason))
    assert message is not None
    assert "t-1/web" in message and "nginx:stable" in message and reason in message


def test_sandbox_failures_of_a_previous_boot_do_not_count() -> None:
    """Events outlive a reboot; the same pod (same uid) may start fine in this one."""
    old = sandbox_event(5)
    old.last_timestamp = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    assert pod_blocker(with_uid(pod()), (), [old], since=THIS_BOOT) is None
    assert pod_blocker(with_uid(pod()), (), [old], since=None) is not None


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImageNeverPull"])
def test_a_back_off_from_before_the_images_were_imported_is_no_blocker(reason: str) -> None:
    """After a reboot the kubelet restarts nginx before the harness re-imports the image
    KubeSolo wiped; the back-off ends with the next pull, which finds it."""
    assert pod_blocker(pod(waiting=reason), {NGINX}) is None
    assert pod_blocker(pod(waiting=reason), {"docker.io/library/busybox:stable"})


@pytest.mark.parametrize(
    ("image", "hint"),
    [
        (NGINX, IMAGE_HINT),
        ("busybox", IMAGE_HINT),
        ("rancher/local-path-provisioner:v0.0.36", "-offline release asset embeds it"),
        ("docker.io/coredns/coredns:1.14.4", "every KubeSolo build embeds it"),
        ("docker.io/portainer/pause:latest", "every KubeSolo build embeds it"),
    ],
)
def test_a_missing_image_gets_the_hint_that_can_work(image: str, hint: str) -> None:
    """local-path-provisioner cannot be side-loaded: KubeSolo pulls or embeds it itself."""
    assert hint in image_hint(image)
    if hint != IMAGE_HINT:
        assert "--kubesolo-images" not in image_hint(image)


@pytest.mark.parametrize(
    ("ref", "repository"),
    [
        ("nginx:stable", "docker.io/library/nginx"),
        ("rancher/local-path-provisioner:v0.0.36", "docker.io/rancher/local-path-provisioner"),
        ("localhost:5000/x:1", "localhost:5000/x"),
        ("localhost:5000/x", "localhost:5000/x"),
        ("nginx@sha256:abc", "docker.io/library/nginx"),
    ],
)
def test_image_repository(ref: str, repository: str) -> None:
    assert image_repository(ref) == repository


def test_pod_without_statuses_is_not_blocked() -> None:
    assert pod_blocker(k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p"))) is None


class TestStartFailures:
    """The kubelet's restartCount is the latest instance's (0 for the first): a start failure
    blocks from the second instance of this boot on, counted from the reboot's counts."""

    @pytest.mark.parametrize(("restarts", "blocked"), [(0, False), (1, True), (4, True)])
    def test_only_a_repeated_start_failure_blocks(self, restarts: int, blocked: bool) -> None:
        message = pod_blocker(crash_loop("StartError", PIVOT, restarts=restarts))
        assert (message is not None) == blocked
        if blocked:
            assert message is not None and f"{restarts + 1} tries in this boot" in message

    @pytest.mark.parametrize(("restarts", "blocked"), [(4, False), (5, False), (6, True)])
    def test_after_a_reboot_the_count_starts_over(self, restarts: int, blocked: bool) -> None:
        """The pod's log files outlive the reboot, so the new boot's first instance carries
        the old count + 1 (here 5): its one failure is the first of this boot. A count
        as old as the reboot's is a status the kubelet has not synced yet."""
        p = with_uid(crash_loop("StartError", PIVOT, restarts=restarts))
        before = {("uid-web", "nginx"): 4}
        message = pod_blocker(p, restarts_before=before)
        assert (message is not None) == blocked
        if blocked:
            assert message is not None and "2 tries in this boot" in message

    def test_another_pods_counts_do_not_count(self) -> None:
        p = with_uid(crash_loop("StartError", PIVOT, restarts=1))
        assert pod_blocker(p, restarts_before={("uid-other", "nginx"): 9}) is not None

    def test_restart_counts_are_taken_by_pod_uid_and_container(self) -> None:
        p = with_uid(crash_loop("Error", restarts=3))
        assert restart_counts([p, pod(waiting=None)]) == {
            ("uid-web", "nginx"): 3,
            (None, "nginx"): 0,
        }


def unscheduled_pod() -> Any:
    """Stored without a node: KubeSolo's webhook did not answer its CREATE."""
    p = pod(waiting=None)
    p.spec.node_name = None
    p.status.container_statuses = None
    p.metadata.creation_timestamp = THIS_BOOT
    return p


class TestUnscheduled:
    """KubeSolo's webhook sets nodeName at admission, failurePolicy Ignore, 30 s timeout."""

    @pytest.mark.parametrize(
        ("seconds", "blocked"),
        [
            (0, False),
            (WEBHOOK_TIMEOUT, False),
            (WEBHOOK_TIMEOUT + UNSCHEDULED_MARGIN, True),
            (600, True),
        ],
    )
    def test_no_node_past_the_webhooks_timeout_blocks(self, seconds: float, blocked: bool) -> None:
        now = THIS_BOOT + timedelta(seconds=seconds)
        message = pod_blocker(unscheduled_pod(), now=now)
        assert (message is not None) == blocked
        if message:
            assert message.startswith(f"pod t-1/web: Pending with no node {seconds:.0f}s after")
            assert "webhook" in message and "\n" not in message

    def test_a_pod_with_a_node_is_never_unscheduled(self) -> None:
        p = unscheduled_pod()
        p.spec.node_name = "kubesolo-abc123"
        assert pod_blocker(p, now=THIS_BOOT + timedelta(hours=1)) is None

    def test_without_a_clock_or_a_creation_time_the_rule_is_off(self) -> None:
        assert pod_blocker(unscheduled_pod()) is None
        p = unscheduled_pod()
        p.metadata.creation_timestamp = None
        assert pod_blocker(p, now=THIS_BOOT + timedelta(hours=1)) is None


class TestPullImagesMissing:
    """A pull back-off on an image not known to be on the node: worth a look at the node."""

    def test_waiting_to_pull_an_image_not_listed(self) -> None:
        assert pull_images_missing(pod(waiting="ImagePullBackOff"), ()) == {NGINX}
        assert pull_images_missing(pod(waiting="ErrImageNeverPull"), {"busybox"}) == {NGINX}

    def test_listed_images_and_other_waits_need_no_look(self) -> None:
        assert pull_images_missing(pod(waiting="ImagePullBackOff"), {NGINX}) == set()
        assert pull_images_missing(pod(waiting="ContainerCreating"), ()) == set()
        assert pull_images_missing(pod(waiting=None), ()) == set()
