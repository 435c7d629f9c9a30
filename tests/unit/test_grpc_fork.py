"""QEMU's child and gRPC (docs/architecture.md "Pitfalls"): once labgrid's
remote client has started gRPC's threads in a worker, forking QEMU the way
the harness does must not run gRPC's fork handlers in the child, which is
how a QEMU start failed with "epoll_wait error: Bad file descriptor"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.vm import machine

REPO = Path(__file__).resolve().parents[2]
# gRPC running (a channel trying to connect), then forks with a preexec_fn,
# as Machine.start forks QEMU; PREEXEC is the harness's or, without it, none
FORKS_AFTER_GRPC = """
import subprocess
{preexec}
import grpc

channel = grpc.insecure_channel("127.0.0.1:9")  # nothing listens: it keeps trying
try:
    grpc.channel_ready_future(channel).result(timeout=0.5)
except grpc.FutureTimeoutError:
    pass
for _ in range(5):
    subprocess.run(["true"], preexec_fn=preexec, check=True)
"""
WITH_THE_HARNESS = "from harness.vm.machine import _die_with_parent as preexec"
WITHOUT_IT = "preexec = lambda: None"
HANDLER_LOG = "fork_posix.cc"  # gRPC logs each fork its handlers see


def fork_after_grpc(preexec: str) -> str:
    """The stderr of a run, in an environment where the user set nothing."""
    env = {k: v for k, v in os.environ.items() if k != machine.GRPC_FORK_SUPPORT[0]}
    done = subprocess.run(
        [sys.executable, "-c", FORKS_AFTER_GRPC.format(preexec=preexec)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stderr


def test_the_harness_turns_grpcs_fork_handlers_off() -> None:
    assert HANDLER_LOG not in fork_after_grpc(WITH_THE_HARNESS)


def test_without_the_harness_grpcs_handlers_see_the_forks() -> None:
    """The control: what the first test would see if the setting went."""
    assert HANDLER_LOG in fork_after_grpc(WITHOUT_IT)
