"""Pods that can never start, and why: a wait stops at once with that one line
instead of running to its budget (docs/kubesolo.md "Images", "Runtime")."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
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
}
# ... except a failed pull of an image the node has since: KubeSolo wipes side-loaded
# images at every start, so a pod the kubelet restarted before the import shows a
# back-off until its next try, which finds the image.
PULL_REASONS = frozenset({"ErrImageNeverPull", "ImagePullBackOff"})

# The runtime could not start the container (pivot_root, cgroups, a crun create that timed
# out), as opposed to a program that exited, which may well start fine once its peers are up.
START_FAILURES = frozenset({"StartError", "ContainerCannotRun"})
# The kubelet's waiting reason right after such a failure, before its back-off begins.
START_FAILURE_WAIT = "RunContainerError"
# A start failure blocks only once it repeats: under TCG a single crun create can time out
# and the next one succeed. The kubelet numbers a container's instances with restartCount,
# written into each instance's annotations: 0 for the first, the previous instance's + 1 for
# each next one. The status shows the latest instance's count, and its termination is the
# state's or, while it waits to restart, the last state's. So a start failure at
# restartCount 0 is the first instance's (CrashLoopBackOff then only waits out the back-off),
# and one at 1 or more is a restart that failed as well. Across a reboot the count goes on:
# the new boot's first instance carries the old count + 1, taken from the old instance or,
# where KubeSolo's start wiped it (docs/kubesolo.md "Images"), from the pod's log files,
# which /var/log keeps (docs/boot-flow.md "Stage 20 — Persistent Mount"). `restarts_before`
# holds the old counts, so a failure repeats only from this boot's second instance on.
# Not told apart: a restart that fails after the program's own exit counts as a repeat.
START_REPEATS = 2

# KubeSolo has no scheduler: its mutating webhook sets spec.nodeName while the API server
# admits the pod's CREATE (docs/kubesolo.md "Networking"), with failurePolicy Ignore and a
# 30 s timeout, so a webhook that is down or slow lets the pod be stored with no node, and
# nothing ever sets one later.
WEBHOOK_TIMEOUT = 30.0
# creationTimestamp is stamped after admission, so a stored pod with no node has already
# missed the webhook; waiting out the webhook's whole timeout from then anyway keeps the rule
# safe should a release add a late binder. The margin covers the two clocks: creationTimestamp
# is the guest's, in whole seconds, and `now` the host's, from which QEMU set the guest's.
UNSCHEDULED_MARGIN = 10.0

# Pod events that, this often in this boot, mean the kubelet cannot set the pod up at all.
BLOCKING_EVENTS: Mapping[str, tuple[int, str]] = {
    "FailedCreatePodSandBox": (3, "its sandbox cannot be created"),
}


@dataclass(frozen=True)
class BootFacts:
    """What the node knows of this boot besides the pod: the normalized refs of the
    images it has, and each container's restartCount before the reboot that began it,
    by (pod uid, container name)."""

    present_images: Collection[str] = ()
    restarts_before: Mapping[tuple[str, str], int] = field(default_factory=dict)


def image_hint(image: str) -> str:
    """What to do about an image the node lacks."""
    return EMBEDDED_IMAGE_HINTS.get(image_repository(image), IMAGE_HINT)


def brief(message: str | None, limit: int = 200) -> str:
    lines = (message or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def with_detail(line: str, message: str | None) -> str:
    detail = brief(message)
    return f"{line}: {detail}" if detail else line


def latest_termination(status: Any) -> Any:
    """How the container's latest instance ended, or None while it runs or never ran:
    the current state's, else (waiting to restart) the last state's."""
    state = status.state
    if state and state.running:
        return None
    current = state and state.terminated
    return current or (status.last_state and status.last_state.terminated)


def memory_limit(pod: Any, container: str) -> str | None:
    """The memory limit the pod's spec gives this container, as written (e.g. 20Mi)."""
    for spec in (pod.spec and pod.spec.containers) or []:
        if spec.name == container:
            limits = (spec.resources and spec.resources.limits) or {}
            return limits.get("memory")
    return None


def restart_counts(pods: Iterable[Any]) -> dict[tuple[str, str], int]:
    """Each container's restartCount, by (pod uid, container): taken before a reboot."""
    return {
        (pod.metadata.uid, status.name): status.restart_count or 0
        for pod in pods
        for status in (pod.status and pod.status.container_statuses) or []
    }


def starts_this_boot(pod: Any, status: Any, restarts_before: Mapping[tuple[str, str], int]) -> int:
    """How many instances of this container this boot has started or tried to, the
    latest included (see START_REPEATS)."""
    before = restarts_before.get((pod.metadata.uid, status.name))
    first = 0 if before is None else before + 1
    return (status.restart_count or 0) - first + 1


def oom_killed(pod: Any, status: Any, facts: BootFacts) -> str | None:
    """Its latest instance ran out of memory: the next one, under the same limit, will too."""
    ended = latest_termination(status)
    if not ended or ended.reason != "OOMKilled":
        return None
    limit = memory_limit(pod, status.name)
    if limit:
        return f"OOMKilled: out of memory at its {limit} memory limit"
    return "OOMKilled with no memory limit: the node ran out of memory (raise --vm-memory)"


def start_failed_again(pod: Any, status: Any, facts: BootFacts) -> str | None:
    """The runtime failed to start it, and not for the first time in this boot."""
    waiting = status.state and status.state.waiting
    ended = latest_termination(status)
    if ended and ended.reason in START_FAILURES:
        reason, message = ended.reason, ended.message
    elif waiting and waiting.reason == START_FAILURE_WAIT:
        reason, message = START_FAILURE_WAIT, waiting.message
    else:
        return None
    starts = starts_this_boot(pod, status, facts.restarts_before)
    if starts < START_REPEATS:
        return None
    lead = f"{waiting.reason} after {reason}" if waiting and waiting.reason != reason else reason
    return with_detail(f"{lead}: never started, {starts} tries in this boot", message)


def cannot_be_created(pod: Any, status: Any, facts: BootFacts) -> str | None:
    """Waiting for something that never comes: an image, a valid name or config."""
    waiting = status.state and status.state.waiting
    reason = waiting and waiting.reason
    if reason in PULL_REASONS:
        if normalize_image_ref(status.image) in facts.present_images:
            return None
        return f"{reason}: {BLOCKING_WAIT_REASONS[reason]}; {image_hint(status.image)}"
    if reason in BLOCKING_WAIT_REASONS:
        return with_detail(f"{reason}: {BLOCKING_WAIT_REASONS[reason]}", waiting.message)
    return None


# The rules a container is checked against, in order: the first that answers wins.
CONTAINER_RULES: tuple[Callable[[Any, Any, BootFacts], str | None], ...] = (
    oom_killed,
    start_failed_again,
    cannot_be_created,
)


def container_blocker(pod: Any, status: Any, facts: BootFacts) -> str | None:
    """Why this container can never start, or None while it still might."""
    for rule in CONTAINER_RULES:
        reason = rule(pod, status, facts)
        if reason:
            return reason
    return None


def unscheduled(pod: Any, now: datetime | None) -> str | None:
    """Pending with no node past the webhook's timeout: no one will ever place it."""
    spec, meta = pod.spec, pod.metadata
    created = meta.creation_timestamp
    if now is None or spec is None or spec.node_name or created is None:
        return None
    if (pod.status and pod.status.phase) not in (None, "Pending"):
        return None
    age = (now - created).total_seconds()
    if age < WEBHOOK_TIMEOUT + UNSCHEDULED_MARGIN:
        return None
    return (
        f"Pending with no node {age:.0f}s after its creation: KubeSolo's webhook, its only "
        "scheduler, never set spec.nodeName (see KubeSolo's console lines in the dump)"
    )


def pull_images_missing(pod: Any, present_images: Collection[str]) -> set[str]:
    """Images this pod waits to pull that `present_images` lacks: worth a fresh look at
    the node before a pull back-off counts as a blocker."""
    waiting = [
        status
        for status in (pod.status and pod.status.container_statuses) or []
        if status.state and status.state.waiting and status.state.waiting.reason in PULL_REASONS
    ]
    return {normalize_image_ref(s.image) for s in waiting} - set(present_images)


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
    *,
    now: datetime | None = None,
    restarts_before: Mapping[tuple[str, str], int] | None = None,
) -> str | None:
    """Why this pod can never start, or None while it still might.

    `present_images`: the normalized refs the node has (listed in this boot);
    `events`: events of the pod's namespace, counted from `since` (this boot's start);
    `now`: the clock the no-node rule reads (None: that rule is off);
    `restarts_before`: restart counts before this boot's reboot (see START_REPEATS)."""
    where = f"pod {pod.metadata.namespace}/{pod.metadata.name}"
    reason = unscheduled(pod, now)
    if reason:
        return f"{where}: {reason}"
    facts = BootFacts(present_images, restarts_before or {})
    for status in (pod.status and pod.status.container_statuses) or []:
        reason = container_blocker(pod, status, facts)
        if reason:
            return f"{where} container {status.name} ({status.image}): {reason}"
    for event in pod_events(pod, events, since):
        rule = BLOCKING_EVENTS.get(event.reason)
        count = event_count(event)
        if rule and count >= rule[0]:
            return f"{where}: {event.reason} x{count}: {rule[1]}: {brief(event.message)}"
    return None
