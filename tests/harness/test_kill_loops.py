"""pytest killed with SIGKILL at a random moment during boots, again and again
(docs/architecture.md "Hygiene"; each run boots machines of its tests and a node
shared by both workers): the controller in one half of the loops, an
xdist worker in the other. After each kill no QEMU of that run is left and no
lock is held by a dead process; the next run removes the run and socket
directories the killed one left; after the loop a normal run is green.
`--kill-loops N` sets the count (the nightly command runs 50)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from child_pytest import child_pytest

from harness import process
from harness.pytest import leftovers

pytestmark = pytest.mark.boot

CHILD_TESTS = textwrap.dedent(
    """
    import pytest

    @pytest.mark.parametrize("n", range(2))
    def test_boot_and_reboot(machine_factory, n):
        vm = machine_factory(name="kill-loop-{n}".format(n=n))
        vm.start()
        vm.wait_for_boot()
        vm.reboot()
        vm.wait_for_boot()

    @pytest.fixture(scope="session")
    def shared(shared_nodes):
        return shared_nodes.node("kill-loop-shared", {}, lambda vm: vm.wait_for_boot())

    @pytest.mark.parametrize("n", range(2))
    def test_a_shared_node(shared, n):
        assert shared.succeed("echo up") == "up\\n"
    """
)


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def socket_pid(directory: Path) -> int:
    return int(directory.name.split("-")[1])


def qemus_under(directory: Path) -> list[int]:
    out = subprocess.run(["pgrep", "-f", f"qemu-system.*{directory}"], capture_output=True)
    return [int(p) for p in out.stdout.split()]


def stale_locks() -> list[str]:
    """flock/POSIX locks of /proc/locks whose holder is dead (the kernel should
    never let one exist: this proves nothing holds on through a zombie)."""
    stale = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        pid = int(fields[4]) if len(fields) > 4 and fields[4].isdigit() else 0
        if pid and not process.pid_alive(pid):
            stale.append(line)
    return stale


def end_run(child: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, and a second one if the first has not ended the run within a
    minute, as a person would (on a TCG machine at load 9, one run took over
    two minutes to end after the first)."""
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=60)
    except subprocess.TimeoutExpired:
        child.send_signal(signal.SIGINT)


def run_child(tmp: Path, image: Path, artifacts: Path) -> subprocess.Popen[bytes]:
    return child_pytest(image, artifacts, tmp / "test_child.py", "-n", "2")


@pytest.mark.long
def test_sigkill_loops_leave_nothing_behind(tmp_path: Path, kubesolo_image, pytestconfig):
    loops = pytestconfig.getoption("kill_loops")
    (tmp_path / "test_child.py").write_text(CHILD_TESTS)
    artifacts = tmp_path / "artifacts"
    rng = random.Random(loops)
    left_qemus: list[int] = []
    stale: list[str] = []
    killed_pids: set[int] = set()  # the killed runs' processes: their socket dirs must go
    for loop in range(loops):
        target = "controller" if loop % 2 == 0 else "worker"
        child = run_child(tmp_path, kubesolo_image.path, artifacts)
        deadline = time.monotonic() + 120
        while not qemus_under(artifacts):  # boots are running
            assert child.poll() is None, "the child pytest ended before any boot"
            assert time.monotonic() < deadline, "the child pytest never started QEMU"
            time.sleep(0.1)
        time.sleep(rng.uniform(0, 8))
        workers = children_of(child.pid)
        killed_pids |= {child.pid, *workers}
        victims = [child.pid] if target == "controller" else workers[:1]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        if target == "worker":
            end_run(child)  # xdist may replace the worker: end the run
        child.wait(timeout=300)
        time.sleep(2)
        print(f"loop {loop}: killed the {target}; QEMU left: {qemus_under(artifacts)}")
        left_qemus += qemus_under(artifacts)
        for pid in qemus_under(artifacts):
            os.kill(pid, signal.SIGKILL)
        stale += stale_locks()

    runs_left = leftovers.leftover_run_dirs(artifacts)
    clean = run_child(tmp_path, kubesolo_image.path, artifacts)
    assert clean.wait(timeout=600) == 0, "the normal run after the kills failed"
    sockets_left = [d for d in leftovers.leftover_socket_dirs() if socket_pid(d) in killed_pids]
    assert left_qemus == [], f"{len(left_qemus)} QEMU left over {loops} kills"
    assert stale == [], "locks held by dead processes"
    assert leftovers.leftover_run_dirs(artifacts) == [], "the next run left run directories"
    assert sockets_left == [], "socket directories of killed runs remain"
    print(f"{loops} kills: {len(runs_left)} run directories left, removed by the next run")
