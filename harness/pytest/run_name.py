"""The run's name, the same in the controller and in every xdist worker: the
directories one run shares between its processes (snapshots, boot timelines)
are named by it, so that two runs in one checkout never touch each other's."""

from __future__ import annotations

import os
import secrets
from typing import Any

import pytest

RUN_KEY = "kubesolo_run_name"  # the controller's run name, in each worker's workerinput
RUN_NAME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[RUN_NAME] = workerinput[RUN_KEY]
    else:  # the controller names the run: its pid (for the leftovers) and a random part
        config.stash[RUN_NAME] = f"run-{os.getpid()}-{secrets.token_hex(4)}"


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: each worker learns the controller's run name."""
    node.workerinput[RUN_KEY] = node.config.stash[RUN_NAME]


def run_name(config: pytest.Config) -> str:
    return config.stash[RUN_NAME]
