"""The boot-time gate on the guest's own clock (docs/architecture.md
"Boot-time gate"): a boot counting instructions reads every stage's start and
end from the guest, and (nightly, `--gate-runs N`) the gate passes an
unchanged tree while the host's load changes, and fails a stage slowed by a
`sleep 1` or by 5 % of its time, in every run."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import guest
from harness.vm import guest_clock

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only("counts a QEMU guest's instructions")]

REPO = Path(__file__).resolve().parents[2]
STAGE_40 = "build/rootfs/usr/lib/kubesolo-os/init.d/40-sysctl.sh"
STAGE_20 = "build/rootfs/usr/lib/kubesolo-os/init.d/20-persistent-mount.sh"
SPREAD_BOOTS = 10  # boots of the quiet baseline, and of the busy one
GATE_BOOTS = 3  # boots of each gate run (boot_gate.MIN_BOOTS)
HOG_PERIOD = 3.0  # seconds the hog runs, then as many it rests


def test_a_boot_reads_its_stages_on_the_guests_clock(machine_factory):
    """Counting instructions, init's stage clock holds every stage in order,
    stage 00 starting when the kernel ran init and stage 90 started."""
    vm = machine_factory(accel="tcg", icount_shift=guest_clock.ICOUNT_SHIFT)
    vm.start()
    vm.wait_for_boot()
    assert f"-icount {guest_clock.ICOUNT}" in (vm.run_dir / "qemu-cmdline.txt").read_text()
    stages = guest_clock.parse(vm.succeed(guest_clock.READ_COMMAND))
    assert [s.name for s in stages] == list(guest.STAGES)
    assert stages[0].start > 0
    for before, after in itertools.pairwise(stages):
        assert before.duration is not None and before.duration >= 0
        assert after.start >= round(before.start + before.duration, 3)
    assert stages[-1].duration is None  # stage 90 runs KubeSolo


# ---- nightly: the gate's proof ------------------------------------------------------


@pytest.fixture(scope="module")
def gate_runs(pytestconfig) -> int:
    runs = pytestconfig.getoption("gate_runs")
    if not runs:
        pytest.skip('nightly: pass --gate-runs N (docs/architecture.md "Boot-time gate")')
    return runs


@contextlib.contextmanager
def cpu_hog(toggle: bool) -> Iterator[None]:
    """A busy loop on every host CPU; with `toggle`, stopped and started again
    every HOG_PERIOD seconds, so the load changes during every boot."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(os.cpu_count() or 1)]  # fmt: skip
    done = threading.Event()

    def flip() -> None:
        running = True
        while not done.wait(HOG_PERIOD):
            running = not running
            for hog in hogs:
                hog.send_signal(signal.SIGCONT if running else signal.SIGSTOP)

    flipper = threading.Thread(target=flip, daemon=True)
    if toggle:
        flipper.start()
    try:
        yield
    finally:
        done.set()
        if toggle:
            flipper.join()
        for hog in hogs:
            hog.send_signal(signal.SIGCONT)
            hog.kill()
            hog.wait()


def timeline(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubesolo-harness timeline` of the tree at `tree` (its own build/)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([sys.executable, "-m", "harness", "timeline", *args],
                          cwd=tree, env=env, capture_output=True, text=True)  # fmt: skip


def tree_copy(at: Path, path: str, change) -> Path:
    """A copy of this tree's tracked files with `path` changed by `change`."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for rel in files.stdout.decode().split("\0"):
        if rel and (REPO / rel).is_file():
            (at / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, at / rel)
    (at / path).write_text(change((REPO / path).read_text()))
    return at


def verdict_row(output: str, measure: str) -> str:
    (row,) = [line for line in output.splitlines() if line.startswith(f"| {measure} |")]
    return row


@pytest.fixture(scope="module")
def quiet_baseline(gate_runs, tmp_path_factory) -> Path:
    """SPREAD_BOOTS boots on a quiet host, saved as the gate's baseline."""
    path = tmp_path_factory.mktemp("gate") / "quiet.json"
    done = timeline(REPO, "--boots", str(SPREAD_BOOTS), "--save", str(path), "--chart",
                    str(path.with_suffix(".svg")))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return path


def test_the_spread_quiet_and_with_every_cpu_busy(quiet_baseline, tmp_path):
    busy = tmp_path / "busy.json"
    with cpu_hog(toggle=False):
        done = timeline(REPO, "--boots", str(SPREAD_BOOTS), "--save", str(busy),
                        "--compare", str(quiet_baseline))  # fmt: skip
    quiet, loaded = (json.loads(p.read_text()) for p in (quiet_baseline, busy))
    for name, (low, high) in quiet["spread"].items():
        busy_low, busy_high = loaded["spread"][name]
        print(f"spread {name}: quiet {low:.3f}-{high:.3f} s, busy {busy_low:.3f}-{busy_high:.3f} s")
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_unchanged_tree_passes_every_run_while_the_load_changes(quiet_baseline, gate_runs):
    failed = []
    with cpu_hog(toggle=True):
        for _ in range(gate_runs):
            done = timeline(REPO, "--boots", str(GATE_BOOTS), "--compare", str(quiet_baseline))
            print(verdict_row(done.stdout, "total"))
            if done.returncode != 0:
                failed.append(done.stdout + done.stderr)
    assert failed == []


def test_sleep_1_in_stage_40_fails_every_run(quiet_baseline, gate_runs, tmp_path):
    tree = tree_copy(tmp_path, STAGE_40, lambda text: text + "sleep 1\n")
    with cpu_hog(toggle=True):
        for _ in range(gate_runs):
            done = timeline(tree, "--boots", str(GATE_BOOTS), "--compare", str(quiet_baseline))
            row = verdict_row(done.stdout, "40-sysctl.sh")
            print(row)
            assert done.returncode == 1 and row.endswith("SLOWER |"), done.stdout + done.stderr


def test_stage_20_slower_by_5_percent_fails_every_run(quiet_baseline, gate_runs, tmp_path):
    """Stage 20 starts extra processes at its end, as many as make 5 % of its
    guest time (each one's cost measured on the guest's clock first)."""
    share = 0.05
    stage_20 = json.loads(quiet_baseline.read_text())["medians"]["20-persistent-mount.sh"]
    processes = processes_for(share * stage_20, tmp_path / "calibrate")
    loop = f"i=0; while [ $i -lt {processes} ]; do /bin/true; i=$((i + 1)); done\n"
    tree = tree_copy(tmp_path / "tree", STAGE_20, lambda text: text + loop)
    with cpu_hog(toggle=True):
        for _ in range(gate_runs):
            done = timeline(tree, "--boots", str(GATE_BOOTS), "--compare", str(quiet_baseline))
            row = verdict_row(done.stdout, "20-persistent-mount.sh")
            print(f"{processes} processes: {row}")
            assert done.returncode == 1 and row.endswith("SLOWER |"), done.stdout + done.stderr


def processes_for(seconds: float, scratch: Path) -> int:
    """How many `/bin/true` cost `seconds` of guest time: a guest counting
    instructions runs 2000 of them and reads its clock around them."""
    from harness.build.builder import BuildRequest, build
    from harness.vm.machine import Machine, MachineConfig

    scratch.mkdir(parents=True)
    config = MachineConfig(accel="tcg", icount_shift=guest_clock.ICOUNT_SHIFT, name="calibrate")
    with Machine(build(BuildRequest()), config, run_dir=scratch) as vm:
        vm.start()
        vm.wait_for_boot()
        out = vm.succeed("read a _ < /proc/uptime; i=0; while [ $i -lt 2000 ]; do /bin/true; "
                         "i=$((i + 1)); done; read b _ < /proc/uptime; echo $a $b")  # fmt: skip
    start, end = (float(x) for x in out.split())
    each = (end - start) / 2000
    return max(1, round(seconds / each + 0.5))
