"""How a parallel run spends its workers (docs/architecture.md
"Parallel runs"): `-n auto` starts one worker more than the host has CPUs,
because a VM test often waits on a guest that uses no CPU while another
worker's boot could; and xdist's work units (a module, or a class) that hold
a test marked `long` are handed out first, so that the run does not end with
one worker still in a 30 s wait while the others have nothing left."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeVar

import pytest

LONG_MARKER = "long"  # harness.pytest.options.MARKERS says what it means
WORKERS_ENV = "PYTEST_XDIST_AUTO_NUM_WORKERS"  # xdist's own override of -n auto
EXTRA_WORKERS = 1

T = TypeVar("T")


def auto_workers(cpus: int) -> int:
    """Workers for `-n auto`: the CPUs, and one for the idle guests' time."""
    return cpus + EXTRA_WORKERS


def work_unit(nodeid: str) -> str:
    """What `--dist loadscope` keeps on one worker: the module, or the class."""
    return nodeid.rsplit("::", 1)[0]


def hand_out_order(
    items: Sequence[T], unit: Callable[[T], str], is_long: Callable[[T], bool]
) -> list[T]:
    """The items by work unit: units with a long item first, then the larger
    units first (xdist's own order), each unit's items in their order."""
    units: dict[str, list[T]] = {}
    for item in items:
        units.setdefault(unit(item), []).append(item)
    ordered = sorted(
        units.values(), key=lambda members: (not any(map(is_long, members)), -len(members))
    )
    return [item for members in ordered for item in members]


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or taskset may allow fewer)."""
    return len(os.sched_getaffinity(0))


@pytest.hookimpl(tryfirst=True, optionalhook=True)  # before xdist's own, which always answers
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    if os.environ.get(WORKERS_ENV):
        return None  # xdist reads it (and warns if it is not a number)
    return auto_workers(usable_cpus())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Only in xdist's workers, which all collect this same order and, with
    `--no-loadscope-reorder` (pyproject.toml), hand the units out in it; a
    run without workers keeps the collection order."""
    if hasattr(config, "workerinput"):
        items[:] = hand_out_order(
            items,
            lambda item: work_unit(item.nodeid),
            lambda item: item.get_closest_marker(LONG_MARKER) is not None,
        )
