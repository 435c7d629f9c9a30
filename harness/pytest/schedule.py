"""How a parallel run spends its workers (docs/architecture.md
"Parallel runs"): `-n auto` starts one worker more than the host has CPUs,
because a VM test often waits on a guest that uses no CPU while another
worker's boot could; and tests marked `long` are collected first, so that
`--dist loadscope` hands out their modules first and the run does not end
with one worker still in a 30 s wait while the others have nothing left."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

import pytest

LONG_MARKER = "long"
LONG_TEXT = (
    "runs for 15 s or more by design (a 30 s device wait, power cuts, kill loops, "
    "child test runs): started first in a parallel run"
)
WORKERS_ENV = "PYTEST_XDIST_AUTO_NUM_WORKERS"  # xdist's own override of -n auto
EXTRA_WORKERS = 1

Item = TypeVar("Item")


def auto_workers(cpus: int) -> int:
    """Workers for `-n auto`: the CPUs, and one for the idle guests' time."""
    return max(1, cpus) + EXTRA_WORKERS


def long_first(items: Iterable[Item], is_long: Callable[[Item], bool]) -> list[Item]:
    """The long items first, each group in its own order (a stable sort)."""
    return sorted(items, key=lambda item: not is_long(item))


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{LONG_MARKER}: {LONG_TEXT}")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get(WORKERS_ENV):
        return None  # xdist reads it
    return auto_workers(usable_cpus())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every worker collects the same order, and xdist hands tests out in it."""
    items[:] = long_first(items, lambda item: item.get_closest_marker(LONG_MARKER) is not None)
