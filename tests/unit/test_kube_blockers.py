"""Pods that can never start stop a wait at once, with one line that says why; pods that
still might (creating, a back-off the next pull ends, an old boot's events) do not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kube_fakes import pod
from kubernetes import client as k8s

from harness.k8s.blockers import BLOCKING_WAIT_REASONS, IMAGE_HINT, image_hint, pod_blocker
from harness.k8s.image_refs import image_repository

THIS_BOOT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
NGINX = "docker.io/library/nginx:stable"


def crash_loop(last_reason: str, message: str = "") -> Any:
    """A pod whose container crash-loops after a termination with `last_reason`."""
    p = pod(waiting="CrashLoopBackOff")
    status = p.status.container_statuses[0]
    status.last_state = k8s.V1ContainerState(
        terminated=k8s.V1ContainerStateTerminated(
            exit_code=128, reason=last_reason, message=message
        )
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
    (pod(waiting="RunContainerError"), [], "RunContainerError: the runtime cannot start"),
    (crash_loop("StartError", PIVOT), [], f"after StartError: never started: {PIVOT}"),
    (crash_loop("ContainerCannotRun"), [], "after ContainerCannotRun"),
    (crash_loop("Error"), [], None),  # its program exited: it may start fine next time
    (crash_loop("Completed"), [], None),
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
