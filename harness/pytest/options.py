"""The plugin's command line (docs/architecture.md "pytest plugins"): its
options, the rules they are checked by before anything boots, its markers
(one table for the whole plugin), and the machine defaults they give."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from harness.artefact import FLAVOURS, Image
from harness.build import previous
from harness.errors import UserError
from harness.pytest import boot_gate
from harness.vm.config import DEFAULT_BOOT_TIMEOUT, MachineConfig

MARKERS = {
    "boot": "boots a VM: boot markers, parameters, stage effects",
    "persistence": "boots a VM more than once on the same data disk",
    "k8s": "needs a real KubeSolo binary (skipped with the stand-in)",
    "runtime": "KubeSolo's containerd, crun and CNI from Debian, on the OS, without KubeSolo",
    "slow": "takes more than a minute under TCG",
    "qemu_only": "needs what only a local QEMU offers (QMP, hot-plug, a second NIC, overlays, "
    "port forwards, the kernel command line): skips on a board (--lg-env) with its reason",
    "console_only": "shows what it proves through the console alone (no test shell): runs "
    "on the release image too (--flavour release)",
    "console_shell": "types at a shell on the console (the emergency shell, kubesolo.shell): "
    "skips on a board whose test shell shares the console's line",
    "cold_boot": "the `machine` fixture boots this test's machine cold",
    "long": "runs for 15 s or more by design (a 30 s device wait, power cuts, kill loops, "
    "child test runs): its module or class is handed out first in a parallel run",
}


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesolo", "KubeSolo OS harness")
    group.addoption(
        "--kubesolo-image",
        metavar="DIR",
        help="use this prebuilt image directory instead of building one",
    )
    group.addoption(
        "--kubesolo-bin",
        metavar="PATH",
        help="a real kubesolo binary or release tarball to build into the image",
    )
    group.addoption(
        "--accel",
        default="auto",
        help="QEMU accelerator: auto, kvm or tcg; auto probes KVM once per host (default: auto)",
    )
    group.addoption(
        "--vm-memory", type=int, default=512, metavar="MB", help="memory of each VM (default: 512)"
    )
    group.addoption(
        "--vm-cpus", type=int, default=1, metavar="N", help="vCPUs of each VM (default: 1)"
    )
    group.addoption(
        "--boot-timeout",
        type=float,
        default=DEFAULT_BOOT_TIMEOUT,
        metavar="S",
        help=f"seconds a boot may take (default: {DEFAULT_BOOT_TIMEOUT:.0f}, TCG-sized)",
    )
    group.addoption(
        "--vm-network",
        default="restricted",
        help="restricted (default): guests reach nothing outside QEMU; open: they reach the "
        "host's network",
    )
    group.addoption(
        "--keep-vms",
        action="store_true",
        help="keep every machine's run directory (disks, logs), passing tests too",
    )
    group.addoption(
        "--kill-loops",
        type=int,
        default=2,
        metavar="N",
        help="SIGKILL loops of the harness's hygiene test (default: 2; nightly: 50)",
    )
    group.addoption(
        "--power-cuts",
        type=int,
        default=2,
        metavar="N",
        help="power cuts of the persistence suite's power-cut test (default: 2; nightly: 30)",
    )
    group.addoption(
        "--flavour",
        default="test",
        help="the image the suites boot: test (default; with the test shell) or release "
        "(as shipped, the stand-in as its KubeSolo without --kubesolo-bin): tests not "
        "marked console_only skip",
    )
    group.addoption(
        "--upgrade-from",
        metavar="DIR_OR_GIT_REV",
        help="the previous release for the upgrade checks: its image directory, or a git "
        "revision of this repository whose test image is built and cached",
    )
    group.addoption(
        "--artifacts",
        metavar="DIR",
        default="artifacts",
        help="where machines' run directories go (default: ./artifacts)",
    )


ACCELS = ("auto", "kvm", "tcg")
NETWORKS = ("restricted", "open")
# Options checked before anything boots: (option, dest, valid?, the rule).
OPTION_RULES: tuple[tuple[str, str, Callable[[Any], bool], str], ...] = (
    ("--vm-memory", "vm_memory", lambda mb: mb >= 128, "at least 128 (MB)"),
    ("--vm-cpus", "vm_cpus", lambda n: n >= 1, "at least 1"),
    ("--boot-timeout", "boot_timeout", lambda s: s > 0, "more than 0 seconds"),
    ("--accel", "accel", lambda a: a in ACCELS, f"use one of {', '.join(ACCELS)}"),
    ("--vm-network", "vm_network", lambda n: n in NETWORKS, f"use one of {', '.join(NETWORKS)}"),
    ("--power-cuts", "power_cuts", lambda n: n >= 1, "at least 1"),
    ("--flavour", "flavour", lambda f: f in FLAVOURS, f"use one of {', '.join(FLAVOURS)}"),
    ("--kubesolo-bin", "kubesolo_bin", lambda p: p is None or Path(p).is_file(), "no such file"),
)


def check_options(config: pytest.Config) -> None:
    """Each bad option is one line, before anything is built or booted."""
    for option, name, ok, rule in OPTION_RULES:
        value = config.getoption(name)
        if not ok(value):
            raise pytest.UsageError(f"{option} {value}: {rule}")
    image = config.getoption("kubesolo_image")
    if image:
        try:
            Image.open(Path(image))
        except UserError as err:
            raise pytest.UsageError(f"--kubesolo-image: {err}") from None
    upgrade_from = config.getoption("upgrade_from")
    if upgrade_from and not Path(upgrade_from).is_dir():
        try:
            previous.resolve_commit(Path(config.rootpath), upgrade_from)
        except UserError as err:
            raise pytest.UsageError(str(err)) from None


@dataclass(frozen=True)
class Settings:
    """Machine defaults from the command line."""

    accel: str
    memory_mb: int
    cpus: int
    boot_timeout: float
    network: str
    keep: bool
    artifacts: Path
    timelines: Path  # this run's boot timelines (harness.pytest.boot_gate)

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        return cls(
            accel=config.getoption("accel"),
            memory_mb=config.getoption("vm_memory"),
            cpus=config.getoption("vm_cpus"),
            boot_timeout=config.getoption("boot_timeout"),
            network=config.getoption("vm_network"),
            keep=config.getoption("keep_vms"),
            artifacts=Path(config.getoption("artifacts")).resolve(),
            timelines=boot_gate.timelines_dir(config),
        )

    def machine_config(self, **overrides: Any) -> MachineConfig:
        known = {f.name for f in fields(MachineConfig)}
        unknown = set(overrides) - known
        if unknown:
            raise UserError(f"unknown machine settings: {', '.join(sorted(unknown))}")
        defaults = {
            "accel": self.accel,
            "memory_mb": self.memory_mb,
            "cpus": self.cpus,
            "boot_timeout": self.boot_timeout,
            "network": self.network,
        }
        return MachineConfig(**{**defaults, **overrides})


def run_dir_name(nodeid: str) -> str:
    """A file-system-safe directory name for a test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[-150:]
