"""`kubesolo-harness bench`: the speed figures of the harness and the OS,
measured on this host (no timing assertions live in tests). Each boot is
shown as a ratio to the floor measured in the same run (harness.build.floor),
and beside it the same measure taken by labgrid (harness.commands.peer_bench)."""

from __future__ import annotations

import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness.artefact import Image
from harness.build.builder import BuildRequest, build
from harness.build.floor import FLOOR_MARKER, write_floor_initramfs
from harness.commands import peer_bench
from harness.errors import UserError
from harness.vm import accel as accel_mod
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine


def timed(fn: Callable[[], object]) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


Record = Callable[[str, float], None]

FLOOR = "floor: the same kernel to an /init that only prints"
BOOT = "kernel boot to stage 90"
REBOOT = "clean reboot to stage 90"
RESTORE = "restore from a snapshot to a usable test shell"
ROUND_TRIP = "test shell round trip"
MIB = "1 MiB through the test shell"
FLOOR_BOUNDED = (FLOOR, BOOT, REBOOT, RESTORE)
# our measure -> labgrid's, shown in the same row
PEERS = {
    BOOT: peer_bench.BOOT,
    ROUND_TRIP: peer_bench.ROUND_TRIP,
    MIB: peer_bench.MIB_THROUGH_SHELL,
}


def boot(vm: Machine) -> None:
    vm.start()
    vm.wait_for_boot()


def reboot(vm: Machine) -> None:
    vm.reboot()
    vm.wait_for_boot()


def floor_boot(image: Image, floor: Path, accel: str) -> float:
    """QEMU start to the floor /init's marker, on the image's command line."""
    config = MachineConfig(accel=accel, initramfs=floor, name="floor")
    with tempfile.TemporaryDirectory() as tmp, Machine(image, config, run_dir=Path(tmp)) as vm:
        started = time.monotonic()
        vm.start()
        vm.wait_for_console(re.escape(FLOOR_MARKER), timeout=120)
        return time.monotonic() - started


def bench_kernel_boot(image: Image, floor: Path, accel: str, record: Record) -> None:
    record(FLOOR, floor_boot(image, floor, accel))
    with tempfile.TemporaryDirectory() as tmp:
        vm = Machine(image, MachineConfig(accel=accel), run_dir=Path(tmp) / "booted")
        with vm:
            record(BOOT, timed(lambda: boot(vm)))
            for stage in vm.stage_timeline():
                record(f"stage {stage.name}", stage.duration or 0.0)
            rtt = [timed(lambda: vm.succeed("true")) for _ in range(10)]
            record(ROUND_TRIP, statistics.median(rtt))
            record(MIB, timed(lambda: vm.succeed("head -c 1048576 /dev/zero")))
            snap = vm.save_snapshot(Path(tmp) / "snapshot")
            restored = Machine(image, MachineConfig(accel=accel), run_dir=Path(tmp) / "restored")
            with restored:
                record(RESTORE, timed(lambda: restored.restore(snap)))
            record(REBOOT, timed(lambda: reboot(vm)))


def bench_iso_boot(image: Image, accel: str, record: Record) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        vm = Machine(image, MachineConfig(boot="iso", accel=accel), run_dir=Path(tmp))
        with vm:
            record("ISO boot to stage 90 (3 s menu)", timed(lambda: boot(vm)))


def measure(runs: int, accel: str, peer: bool) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(round(seconds, 3))
        print(f"[bench] {name}: {seconds:.2f}s", flush=True)

    image = build(BuildRequest(flavour="test"))
    record("image build, cache hit", timed(lambda: build(BuildRequest())))
    # labgrid is given the accelerator our boots resolve to, not "auto"
    peer_accel = accel_mod.resolve(accel, "qemu-system-x86_64", image.kernel).accel
    with tempfile.TemporaryDirectory() as tmp:
        floor = write_floor_initramfs(image.initramfs, Path(tmp) / "floor.cpio")
        for _ in range(runs):
            bench_kernel_boot(image, floor, accel, record)
            if peer:
                try:
                    peer_bench.bench_labgrid(image, peer_accel, record)
                except Exception as err:  # labgrid's own errors too: one line, not a traceback
                    raise UserError(f"labgrid's column: {err} (--no-peer skips it)") from err
            bench_iso_boot(image, accel, record)
    return results


def ratio_to_floor(name: str, median: float, floor: float | None) -> str:
    """ "2.4x" for the boots and the restore; blank for the rest."""
    if floor and name in FLOOR_BOUNDED:
        return f"{median / floor:.1f}x"
    return ""


def table(results: dict[str, list[float]]) -> list[str]:
    """One row per measure of ours, labgrid's figure for it beside it."""
    floor_runs = results.get(FLOOR)
    floor = statistics.median(floor_runs) if floor_runs else None
    lines = [
        "| measure | median (s) | to the floor | labgrid (s) | runs |",
        "|---|---|---|---|---|",
    ]
    peer_names = set(PEERS.values())
    for name, runs_of in results.items():
        if name in peer_names:
            continue
        median = statistics.median(runs_of)
        peer_runs = results.get(PEERS.get(name, ""))
        peer = f"{statistics.median(peer_runs):.2f}" if peer_runs else ""
        ratio = ratio_to_floor(name, median, floor)
        lines.append(f"| {name} | {median:.2f} | {ratio} | {peer} | {len(runs_of)} |")
    return lines


def summary(results: dict[str, list[float]]) -> dict[str, dict[str, object]]:
    floor = statistics.median(results[FLOOR])
    return {
        name: {
            "median": statistics.median(v),
            "runs": v,
            "to_floor": round(statistics.median(v) / floor, 2) if name in FLOOR_BOUNDED else None,
        }
        for name, v in results.items()
    }


def main_bench(runs: int, accel: str, out: str | None, peer: bool = True) -> int:
    results = measure(runs, accel, peer and peer_bench.labgrid_available())
    print("\n" + "\n".join(table(results)))
    if out:
        Path(out).write_text(json.dumps(summary(results), indent=2) + "\n")
    return 0
