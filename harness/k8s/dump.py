"""The failure dump: node conditions, pod states, events and KubeSolo's own
console lines as plain text, attached to a failing test (pure formatting)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from harness.k8s.kubesolo import CONSOLE_START
from harness.k8s.predicates import node_boot_id, pod_phase

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
EPOCH = datetime.min.replace(tzinfo=UTC)
DUMP_FILE = "k8s-dump.txt"


def format_nodes(nodes: Iterable[Any]) -> list[str]:
    lines = []
    for node in nodes:
        lines.append(f"node {node.metadata.name} (boot {node_boot_id(node)})")
        for c in (node.status and node.status.conditions) or []:
            lines.append(f"  {c.type}={c.status} {c.reason or ''}: {c.message or ''}".rstrip())
    return lines or ["(no nodes registered)"]


def _container_state(status: Any) -> str:
    state = status.state
    if state is None:
        return "unknown"
    if state.waiting:
        return f"waiting {state.waiting.reason}: {state.waiting.message or ''}".rstrip(": ")
    if state.terminated:
        return f"terminated {state.terminated.reason} exit={state.terminated.exit_code}"
    return "running" if state.running else "unknown"


def format_pods(pods: Iterable[Any]) -> list[str]:
    lines = []
    for pod in pods:
        meta = pod.metadata
        node = pod.spec.node_name if pod.spec else None
        lines.append(f"pod {meta.namespace}/{meta.name} {pod_phase(pod)} node={node}")
        for s in (pod.status and pod.status.container_statuses) or []:
            lines.append(f"  {s.name} {s.image} restarts={s.restart_count} {_container_state(s)}")
    return lines or ["(no pods)"]


def event_time(event: Any) -> datetime:
    stamps = (event.last_timestamp, event.event_time, event.first_timestamp)
    return next((s for s in stamps if s is not None), event.metadata.creation_timestamp or EPOCH)


def format_events(events: Iterable[Any], limit: int = 60) -> list[str]:
    """The latest events, oldest first, one line each."""
    ordered = sorted(events, key=event_time)[-limit:]
    lines = []
    for e in ordered:
        obj = e.involved_object
        where = f"{e.metadata.namespace}/{obj.kind}/{obj.name}"
        count = f" x{e.count}" if e.count and e.count > 1 else ""
        lines.append(
            f"{event_time(e).isoformat()} {e.type} {e.reason}{count} {where}: "
            f"{(e.message or '').strip()}"
        )
    return lines or ["(no events)"]


def kubesolo_console_lines(text: str, limit: int = 150) -> list[str]:
    """KubeSolo's own log lines of the current boot, colour codes removed."""
    lines = [ANSI.sub("", line).rstrip("\r") for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if CONSOLE_START in line]
    tail = lines[starts[-1] :] if starts else lines
    return tail[-limit:] or ["(console is empty)"]


def failure_dump(sections: Mapping[str, Sequence[str]]) -> str:
    """Sections as a plain-text report to attach to a failing test."""
    parts = []
    for title, lines in sections.items():
        parts.append(f"==== {title} ====")
        parts.extend(lines)
    return "\n".join(parts) + "\n"
