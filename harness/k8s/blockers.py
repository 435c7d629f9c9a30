"""Pods that can never start, and why: a wait stops at once with that one line
instead of running to its budget (docs/kubesolo.md "Images", "Runtime")."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from harness.k8s.dump import event_time
from harness.k8s.image_refs import image_repository, normalize_image_ref

IMAGE_HINT = "preload it: pass --kubesolo-images DIR (see README)"
EMBEDDED_BY_EVERY_BUILD = "every KubeSolo build embeds it: KubeSolo's own import failed"
# Images KubeSolo imports itself at each start: side-loading them cannot help.
EMBEDDED_IMAGE_HINTS: Mapping[str, str] = {
    "docker.io/rancher/local-path-provisioner": (
        "only KubeSolo's -offline release asset embeds it: build with that asset (see README)"
    ),
    "docker.io/coredns/coredns": EMBEDDED_BY_EVERY_BUILD,
    "docker.io/portainer/pause": EMBEDDED_BY_EVERY_BUILD,
}

# Container waiting reasons that no amount of waiting fixes on an air-gapped node.
BLOCKING_WAIT_REASONS: Mapping[str, str] = {
    "ErrImageNeverPull": "image not on the node",
    "ImagePullBackOff": "image cannot be pulled",
    "InvalidImageName": "image name is invalid",
    "CreateContainerConfigError": "container config is invalid",
    "RunContainerError": "the runtime cannot start the container",
}
# ... except a failed pull of an image the harness has imported since: KubeSolo wipes
# side-loaded images at every start, so a pod the kubelet restarted before the import
# shows a back-off until its next try, which finds the image.
PULL_REASONS = frozenset({"ErrImageNeverPull", "ImagePullBackOff"})
# A crash loop whose container never started (the runtime failed: pivot_root, cgroups),
# as opposed to a program that exited, which may well start fine once its peers are up.
START_FAILURES = frozenset({"StartError", "ContainerCannotRun"})
# Pod events that, this often in this boot, mean the kubelet cannot set the pod up at all.
BLOCKING_EVENTS: Mapping[str, tuple[int, str]] = {
    "FailedCreatePodSandBox": (3, "its sandbox cannot be created"),
}


def image_hint(image: str) -> str:
    """What to do about an image the node lacks."""
    return EMBEDDED_IMAGE_HINTS.get(image_repository(image), IMAGE_HINT)


def brief(message: str | None, limit: int = 200) -> str:
    lines = (message or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def container_blocker(status: Any, present_images: Collection[str]) -> str | None:
    """Why this container can never start, or None while it still might."""
    state = status.state
    waiting = state and state.waiting
    if not waiting:
        return None
    reason = waiting.reason
    if reason in PULL_REASONS:
        if normalize_image_ref(status.image) in present_images:
            return None
        return f"{reason}: {BLOCKING_WAIT_REASONS[reason]}; {image_hint(status.image)}"
    if reason == "CrashLoopBackOff":
        last = status.last_state and status.last_state.terminated
        if last and last.reason in START_FAILURES:
            return f"CrashLoopBackOff after {last.reason}: never started: {brief(last.message)}"
        return None
    if reason in BLOCKING_WAIT_REASONS:
        detail = brief(waiting.message)
        return f"{reason}: {BLOCKING_WAIT_REASONS[reason]}" + (f": {detail}" if detail else "")
    return None


def event_count(event: Any) -> int:
    series = getattr(event, "series", None)
    return max(event.count or 1, (series.count or 0) if series else 0)


def pod_events(pod: Any, events: Iterable[Any], since: datetime | None) -> list[Any]:
    """The events about this pod (by uid, else name) from `since` (this boot) on."""
    meta = pod.metadata
    mine = []
    for event in events:
        about = event.involved_object
        same = about.uid == meta.uid if about.uid and meta.uid else about.name == meta.name
        if same and (since is None or event_time(event) >= since):
            mine.append(event)
    return mine


def pod_blocker(
    pod: Any,
    present_images: Collection[str] = (),
    events: Iterable[Any] = (),
    since: datetime | None = None,
) -> str | None:
    """Why this pod can never start, or None while it still might.

    `present_images`: the normalized refs the node has (imported after this boot);
    `events`: events of the pod's namespace, counted from `since` (this boot's start)."""
    where = f"pod {pod.metadata.namespace}/{pod.metadata.name}"
    for status in (pod.status and pod.status.container_statuses) or []:
        reason = container_blocker(status, present_images)
        if reason:
            return f"{where} container {status.name} ({status.image}): {reason}"
    for event in pod_events(pod, events, since):
        rule = BLOCKING_EVENTS.get(event.reason)
        count = event_count(event)
        if rule and count >= rule[0]:
            return f"{where}: {event.reason} x{count}: {rule[1]}: {brief(event.message)}"
    return None
