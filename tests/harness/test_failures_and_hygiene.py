"""Fast failure, network isolation and process hygiene of the harness
(docs/architecture.md "Pitfalls")."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from child_pytest import child_pytest

from harness.vm.console import BootFailure

pytestmark = pytest.mark.boot


def qemu_pids_with(marker: str) -> list[int]:
    """PIDs of QEMU processes whose command line mentions `marker`."""
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{marker}"], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_kernel_panic_fails_fast(machine_factory):
    """rdinit=/nonexistent panics the kernel: wait_for_boot raises within
    30 s with 'panic' and the console tail in the message."""
    vm = machine_factory(kernel_args="rdinit=/nonexistent")
    started = time.monotonic()
    vm.start()
    with pytest.raises(BootFailure) as failure:
        vm.wait_for_boot()
    assert time.monotonic() - started < 30
    assert "panic" in str(failure.value)
    assert "--- console tail ---" in str(failure.value)


def test_restricted_guest_cannot_reach_host_loopback(machine):
    """In `restricted` mode the user-network gateway leads nowhere: a server
    on the host's 127.0.0.1 is unreachable from the guest."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    accepted = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    status, _ = machine.execute(f"timeout 10 nc 10.0.2.2 {port} </dev/null", timeout=30)
    thread.join()
    server.close()
    assert status != 0
    assert accepted == []


PYTEST_CHILD = textwrap.dedent(
    """
    import os

    def test_boot_forever(machine_factory):
        vm = machine_factory(name="{marker}")
        vm.start()
        open("{ready}", "w").write("started")
        {action}
    """
)
WAIT_FOREVER = 'vm.wait_for_console("will never appear", timeout=600)'

# name: (pytest arguments, what the test does once QEMU runs, signal we send)
ENDINGS = {
    "sigkill": (["-p", "no:xdist"], WAIT_FOREVER, signal.SIGKILL),
    "ctrl-c": (["-p", "no:xdist"], WAIT_FOREVER, signal.SIGINT),
    "test-timeout": (["-p", "no:xdist", "--timeout", "15"], WAIT_FOREVER, None),
    "xdist-worker-crash": (["-n", "1"], "os._exit(3)", None),
}


# Seconds a QEMU may outlive its test's end: Ctrl-C tears the test down
# (1.6 s at load 3 here), and a loaded 2-core TCG machine took over 5 s once.
QEMU_GONE_SECONDS = 30


@pytest.mark.parametrize("ending", ENDINGS)
def test_no_qemu_left_when_the_test_ends_badly(tmp_path: Path, ending: str, kubesolo_image):
    """pytest killed (-9), interrupted (Ctrl-C), a test timing out, an xdist
    worker dying: within QEMU_GONE_SECONDS no QEMU of that test is left."""
    args, action, sig = ENDINGS[ending]
    marker = f"hygiene-{ending}-{os.getpid()}"
    ready = tmp_path / "ready"
    (tmp_path / "test_child.py").write_text(
        PYTEST_CHILD.format(marker=marker, ready=ready, action=action)
    )
    child = child_pytest(
        kubesolo_image.path, tmp_path / "artifacts", tmp_path / "test_child.py", *args
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        assert child.poll() is None, "the child pytest ended before starting QEMU"
        assert time.monotonic() < deadline, "the child pytest never started QEMU"
        time.sleep(0.2)
    if sig is not None:
        assert qemu_pids_with(marker), "QEMU is not running in the child"
        child.send_signal(sig)
    else:
        child.wait(timeout=120)
    ended = time.monotonic()
    while qemu_pids_with(marker) and time.monotonic() - ended < QEMU_GONE_SECONDS:
        time.sleep(0.1)
    left = qemu_pids_with(marker)
    print(f"{ending}: QEMU gone {time.monotonic() - ended:.1f}s after the end")
    child.kill()
    child.wait()
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == []
