"""QEMU's child and gRPC (docs/architecture.md "Pitfalls"): once labgrid's
remote client has started gRPC's threads in a worker, forking QEMU the way
the harness does must not run gRPC's fork handlers in the child, which is
how a QEMU start failed with "epoll_wait error: Bad file descriptor"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import process

REPO = Path(__file__).resolve().parents[2]
# A worker: gRPC imported first (labgrid's pytest plugin may load before
# ours) and running (a channel trying to connect), then the harness's forks
FORKS_AFTER_GRPC = """
import subprocess

import grpc

from harness.process import child_in_own_group_dies_with_parent as preexec

channel = grpc.insecure_channel("127.0.0.1:9")  # nothing listens: it keeps trying
try:
    grpc.channel_ready_future(channel).result(timeout=0.5)
except grpc.FutureTimeoutError:
    pass


def fork_once():
    try:
        return subprocess.run(["true"], preexec_fn=preexec).returncode == 0
    except subprocess.SubprocessError:
        return False


print(sum(not fork_once() for _ in range(5)), "children died")
"""
# gRPC logs the forks its handlers see: without the setting, this script's
# stderr holds one such line per fork (checked by hand), and under load a
# child may die, as QEMU's once did
HANDLER_LOG = "fork_posix.cc"


def test_a_worker_started_by_the_harness_runs_no_grpc_fork_handler() -> None:
    """xdist's workers inherit the controller's environment, in which the
    harness has set the variable before any worker imports gRPC."""
    name, value = process.GRPC_FORK_SUPPORT
    if os.environ.get(name, value) != value:  # absent: the harness did not set it
        pytest.skip(f"{name} is set to {os.environ[name]!r} by the user")
    run = subprocess.run(
        [sys.executable, "-c", FORKS_AFTER_GRPC],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert HANDLER_LOG not in run.stderr, run.stderr
    assert run.stdout.strip() == "0 children died"
