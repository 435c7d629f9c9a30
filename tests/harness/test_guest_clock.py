"""The boot-time gate on the guest's own clock (docs/architecture.md
"Boot-time gate"): a boot counting instructions reads every stage's start and
end from the guest, and (nightly, `--gate-runs N`) the gate passes an
unchanged tree while the host's load changes, and fails a stage slowed by a
`sleep 1` or by 5 % of its time, in every run."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
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
from harness.boottime import guest_clock

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only("counts a QEMU guest's instructions")]

REPO = Path(__file__).resolve().parents[2]
STAGE_40 = "build/rootfs/usr/lib/kubesolo-os/init.d/40-sysctl.sh"
STAGE_20 = "build/rootfs/usr/lib/kubesolo-os/init.d/20-persistent-mount.sh"
STAGE_20_NAME = "20-persistent-mount.sh"
CALIBRATION = 200  # extra processes whose cost in stage 20 is measured first
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
    """`kubesolo-harness timeline` of the tree at `tree` (its own build/); its
    chart goes nowhere unless `args` name one."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    chart = [] if "--chart" in args else ["--chart", os.devnull]
    return subprocess.run([sys.executable, "-m", "harness", "timeline", *chart, *args],
                          cwd=tree, env=env, capture_output=True, text=True)  # fmt: skip


def tree_copy(at: Path, path: str, change) -> Path:
    """A copy of this tree's tracked files with `path` changed by `change`."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    for rel in files.stdout.decode().split("\0"):
        source = REPO / rel
        if rel and (source.is_symlink() or source.is_file()):  # the image's links too
            (at / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, at / rel, follow_symlinks=False)
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
    """Stage 20 starts extra processes at its end, as many as make it 5 %
    slower: their cost is measured in stage 20 first, on a tree that starts
    CALIBRATION of them."""
    share = 0.05
    base = json.loads(quiet_baseline.read_text())["medians"][STAGE_20_NAME]
    each = (stage_20_with(CALIBRATION, tmp_path / "calibrate") - base) / CALIBRATION
    processes = math.ceil(share * base / each)
    tree = tree_copy(tmp_path / "tree", STAGE_20, lambda text: text + extra_processes(processes))
    with cpu_hog(toggle=True):
        for _ in range(gate_runs):
            done = timeline(tree, "--boots", str(GATE_BOOTS), "--compare", str(quiet_baseline))
            row = verdict_row(done.stdout, STAGE_20_NAME)
            print(f"{processes} processes of {each * 1000:.2f} ms: {row}")
            assert done.returncode == 1 and row.endswith("SLOWER |"), done.stdout + done.stderr


def extra_processes(count: int) -> str:
    return f"i=0; while [ $i -lt {count} ]; do /bin/true; i=$((i + 1)); done\n"


def stage_20_with(processes: int, at: Path) -> float:
    """Stage 20's median guest time on a tree whose stage 20 starts `processes` more."""
    tree = tree_copy(at, STAGE_20, lambda text: text + extra_processes(processes))
    saved = at / "calibration.json"
    done = timeline(tree, "--boots", str(GATE_BOOTS), "--save", str(saved), "--chart",
                    str(at / "calibration.svg"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(saved.read_text())["medians"][STAGE_20_NAME]
