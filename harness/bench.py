"""`kubesolo-harness bench`: the speed figures of the harness and the OS,
measured on this host (no timing assertions live in tests)."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.artefact import Image
from harness.build.builder import BuildRequest, build
from harness.vm.machine import Machine, MachineConfig


def timed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


Record = Callable[[str, float], None]


def boot(vm: Machine) -> None:
    vm.start()
    vm.wait_for_boot()


def reboot(vm: Machine) -> None:
    vm.reboot()
    vm.wait_for_boot()


def bench_kernel_boot(image: Image, accel: str, record: Record) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vm = Machine(image, MachineConfig(accel=accel), run_dir=Path(tmp))
        with vm:
            record("kernel boot to stage 90", timed(lambda: boot(vm)))
            for stage in vm.stage_timeline():
                record(f"stage {stage.name}", stage.duration or 0.0)
            rtt = [timed(lambda: vm.succeed("true")) for _ in range(10)]
            record("test shell round trip", statistics.median(rtt))
            record(
                "1 MiB through the test shell",
                timed(lambda: vm.succeed("head -c 1048576 /dev/zero")),
            )
            record("clean reboot to stage 90", timed(lambda: reboot(vm)))


def bench_iso_boot(image: Image, accel: str, record: Record) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vm = Machine(image, MachineConfig(boot="iso", accel=accel), run_dir=Path(tmp))
        with vm:
            record("ISO boot to stage 90 (3 s menu)", timed(lambda: boot(vm)))


def measure(runs: int, accel: str) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(round(seconds, 3))
        print(f"[bench] {name}: {seconds:.2f}s", flush=True)

    image = build(BuildRequest(flavour="test"))
    record("image build, cache hit", timed(lambda: build(BuildRequest())))
    for _ in range(runs):
        bench_kernel_boot(image, accel, record)
        bench_iso_boot(image, accel, record)
    return results


def main_bench(runs: int, accel: str, out: str | None) -> int:
    results = measure(runs, accel)
    summary = {name: {"median": statistics.median(v), "runs": v} for name, v in results.items()}
    print("\n| measure | median (s) | runs |\n|---|---|---|")
    for name, runs_of in results.items():
        print(f"| {name} | {statistics.median(runs_of):.2f} | {len(runs_of)} |")
    if out:
        Path(out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0
