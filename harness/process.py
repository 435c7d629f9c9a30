"""Process hygiene (docs/architecture.md "Pitfalls"): whatever the harness
starts dies with it, and a forked QEMU runs no gRPC fork handler. Nothing
here acts on import: each setting is a call."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
# gRPC (labgrid's remote client) restarts its poller threads in a forked
# child. In the child that is to exec QEMU, one of them can fail on a
# descriptor closed before the exec and take the child with it ("QEMU exited
# at start: ... epoll_wait error: Bad file descriptor"). That child runs no
# gRPC, so its fork handlers are off unless the user turned them on. gRPC
# reads this when imported, and labgrid's pytest plugin may import it before
# ours: xdist's workers have it from the controller's environment.
GRPC_FORK_SUPPORT = ("GRPC_ENABLE_FORK_SUPPORT", "false")


def keep_grpc_out_of_forks() -> None:
    """Turn gRPC's fork handlers off for this process and its children, unless
    the user set them: call before gRPC is imported or workers are started."""
    os.environ.setdefault(*GRPC_FORK_SUPPORT)


def _kill_me_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def child_dies_with_parent() -> None:
    """A preexec_fn: the child gets SIGKILL when the thread that started it dies."""
    _kill_me_with_parent()


def child_in_own_group_dies_with_parent() -> None:
    """A preexec_fn: the child leads a process group of its own (killed as
    one) and gets SIGKILL when the thread that started it dies."""
    os.setsid()
    _kill_me_with_parent()


def die_with_parent() -> None:
    """This process gets SIGKILL when its parent dies. For pytest-xdist workers:
    a controller killed with -9 must not leave workers (and their QEMUs) running."""
    parent = os.getppid()
    _kill_me_with_parent()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def pid_alive(pid: int) -> bool:
    """A process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
