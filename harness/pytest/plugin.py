"""The pytest plugin: options, markers, the image and machine fixtures, and
failure reports that carry the console tail and where the artefacts are."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from harness.artefact import FLAVOURS, Image
from harness.build import previous
from harness.build.builder import BuildRequest, build
from harness.errors import UserError
from harness.lab.board import Board, BoardTarget, WrongBoard
from harness.log import logger
from harness.private import PRIVATE_UMASK, share
from harness.process import die_with_parent, keep_grpc_out_of_forks
from harness.pytest import boot_gate, leftovers, run_name, schedule, snapshots
from harness.pytest.shared_nodes import SharedNodes
from harness.pytest.snapshots import SnapshotStore
from harness.vm import accel
from harness.vm.config import DEFAULT_BOOT_TIMEOUT, MachineConfig
from harness.vm.machine import Machine
from harness.vm.protocols import Target
from harness.vm.relay import RemoteMachine

MACHINES = pytest.StashKey[list[Target]]()  # machines of a test, for its report
ACTIVITY = pytest.StashKey[dict[int, int]]()  # machine id -> its activity when the test began
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
}
MachineFactory = Callable[..., Target]  # a QEMU Machine, or a BoardTarget with --lg-env
SHARED_DIR = "shared"  # beside the run's snapshots: who serves each shared node
FAILURES_DIR = "failures"  # under --artifacts: one text file per failing test phase
log = logger("pytest")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    group = parser.getgroup("kubesolo", "KubeSolo OS harness")
    if not pluginmanager.is_registered(run_name):
        pluginmanager.register(run_name, "kubesolo-run-name")  # before its users configure
    if not pluginmanager.is_registered(boot_gate):
        pluginmanager.register(boot_gate, "kubesolo-boot-gate")  # its options follow ours
    if not pluginmanager.is_registered(snapshots):
        pluginmanager.register(snapshots, "kubesolo-snapshots")
    if not pluginmanager.is_registered(schedule):
        pluginmanager.register(schedule, "kubesolo-schedule")
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


def pytest_configure(config: pytest.Config) -> None:
    # run directories, disks, snapshots (guest RAM), kubeconfigs: ours alone;
    # what is shared on purpose is made readable (harness.private.share)
    os.umask(PRIVATE_UMASK)
    keep_grpc_out_of_forks()  # before xdist starts its workers, which inherit it
    if hasattr(config, "workerinput"):  # an xdist worker: die with the controller
        die_with_parent()
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
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


@pytest.fixture(scope="session")
def harness_settings(pytestconfig: pytest.Config) -> Settings:
    return Settings.from_config(pytestconfig)


@pytest.fixture(scope="session")
def kubesolo_image(pytestconfig: pytest.Config) -> Image:
    """The test-flavour image: prebuilt (--kubesolo-image) or built once and
    shared by all xdist workers through the builder's cache and lock."""
    prebuilt = pytestconfig.getoption("kubesolo_image")
    try:
        if prebuilt:
            return Image.open(Path(prebuilt))
        binary = pytestconfig.getoption("kubesolo_bin")
        flavour = pytestconfig.getoption("flavour")
        request = BuildRequest(
            flavour=flavour,
            kubesolo_bin=Path(binary) if binary else None,
            standin=flavour == "release" and not binary,
        )
        return build(request)
    except UserError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="session")
def previous_image(pytestconfig: pytest.Config) -> Image:
    """The previous release's image (--upgrade-from), built once per commit."""
    source = pytestconfig.getoption("upgrade_from")
    if not source:
        pytest.skip("needs the previous release: pass --upgrade-from DIR_OR_GIT_REV (see README)")
    try:
        return previous.previous_image(source, Path(pytestconfig.rootpath))
    except UserError as err:
        pytest.fail(str(err), pytrace=False)


def _factory(
    image: Image, settings: Settings, prefix: str, board: Board | None = None
) -> tuple[MachineFactory, list[Target]]:
    machines: list[Target] = []
    node_dir = settings.artifacts / run_dir_name(prefix)

    session_image = image

    def make(*, image: Image = image, **overrides: Any) -> Target:
        """A target of this test; `image` boots another image (QEMU only: the
        upgrade checks), the rest are MachineConfig fields."""
        overrides.setdefault("name", f"vm{len(machines)}")
        try:
            config = settings.machine_config(**overrides)
            run_dir = node_dir / config.name
            shutil.rmtree(run_dir, ignore_errors=True)
            machine: Target
            if board is not None:
                if image is not session_image:
                    raise UserError("a board boots the run's image only: mark the test qemu_only")
                machine = BoardTarget(board, config, run_dir)
            else:
                machine = Machine(image, config, run_dir=run_dir)
            leftovers.mark_owner(run_dir)
        except WrongBoard as err:
            pytest.skip(f"on this board: {err}")
        except UserError as err:
            pytest.fail(str(err), pytrace=False)
        machines.append(machine)
        return machine

    return make, machines


def _teardown(machines: list[Target], settings: Settings, failed: bool, owner: str) -> None:
    keep = settings.keep
    for machine in machines:
        machine.close()
        machine.save_artifacts()
    boot_gate.record_boots(machines, settings.timelines, owner)
    for machine in machines:
        if keep and isinstance(machine, Machine):
            machine.detach_disk_from_snapshot()  # the run's snapshots go at its end
            machine.image.keep_for(machine.run_dir)  # its disks are built on the image
        if not keep and not failed:
            shutil.rmtree(machine.run_dir, ignore_errors=True)
            with contextlib.suppress(OSError):  # the test's directory, once empty
                machine.run_dir.parent.rmdir()
        else:
            leftovers.mark_kept(machine.run_dir)
            if not keep:
                for disk in machine.run_dir.glob("*overlay.qcow2"):
                    disk.unlink()


@pytest.fixture
def machine_factory(
    request: pytest.FixtureRequest,
    kubesolo_image: Image,
    harness_settings: Settings,
    lab_board: Board | None,
) -> Iterator[MachineFactory]:
    """`machine_factory(**MachineConfig fields) -> Machine`, not started;
    every machine is killed after the test. With --lg-env: BoardTargets."""
    make, machines = _factory(kubesolo_image, harness_settings, request.node.nodeid, lab_board)
    request.node.stash[MACHINES] = machines
    yield make
    rep = getattr(request.node, "rep_call", None)
    _teardown(machines, harness_settings, rep is None or rep.failed, request.node.nodeid)


@pytest.fixture(scope="session")
def session_machine_factory(
    request: pytest.FixtureRequest,
    kubesolo_image: Image,
    harness_settings: Settings,
    lab_board: Board | None,
) -> Iterator[MachineFactory]:
    """Like machine_factory, for machines shared by many tests."""
    # one directory per worker process: xdist workers and concurrent runs
    # in the same checkout never clear each other's machines
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"session-{worker}-{os.getpid()}"
    make, machines = _factory(kubesolo_image, harness_settings, prefix, lab_board)
    request.session.stash[MACHINES] = machines
    yield make
    _teardown(machines, harness_settings, request.session.testsfailed > 0, prefix)


@pytest.fixture(scope="session")
def snapshot_store(
    pytestconfig: pytest.Config,
    kubesolo_image: Image,
    harness_settings: Settings,
    lab_board: Board | None,
) -> SnapshotStore:
    """The run's booted states (docs/architecture.md "Snapshots"); off with
    --no-snapshots, on a board, and on an image without the test shell."""
    on = (
        not pytestconfig.getoption("no_snapshots")
        and lab_board is None
        and kubesolo_image.manifest.get("flavour") == "test"
    )
    directory = snapshots.run_dir(pytestconfig) if on else None
    return SnapshotStore(directory, harness_settings.timelines)


@dataclass
class SharedState:
    """A worker's shared nodes and the machines it brought up for them."""

    nodes: SharedNodes
    machines: list[Target]
    prefix: str
    settings: Settings


SHARED = pytest.StashKey[SharedState]()


@pytest.fixture(scope="session")
def shared_nodes(
    request: pytest.FixtureRequest,
    pytestconfig: pytest.Config,
    kubesolo_image: Image,
    harness_settings: Settings,
    snapshot_store: SnapshotStore,
    lab_board: Board | None,
) -> Iterator[SharedNodes]:
    """The run's nodes shared by every worker (docs/architecture.md "Shared
    nodes"). The nodes this worker owns outlive its tests: they close in
    pytest_sessionfinish, once the other workers are done with them, outside
    any test's time limit."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    prefix = f"shared-{worker}-{os.getpid()}"
    make, machines = _factory(kubesolo_image, harness_settings, prefix, lab_board)
    directory = snapshots.run_dir(pytestconfig) / SHARED_DIR
    run_dir = harness_settings.artifacts / run_dir_name(prefix)
    nodes = SharedNodes(directory, snapshot_store, make, kubesolo_image, run_dir)
    request.session.stash[SHARED] = SharedState(nodes, machines, prefix, harness_settings)
    yield nodes
    nodes.detach(failed=request.session.testsfailed > 0)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close this worker's shared nodes once nobody uses them; keep their
    artefacts when a test failed here or, on them, in another worker."""
    state = session.stash.get(SHARED, None)
    if state is None:
        return
    others_failed = state.nodes.close()
    failed = session.testsfailed > 0 or others_failed
    _teardown(state.machines, state.settings, failed, state.prefix)
    for remote in state.nodes.remotes:  # the attached side's directories
        if failed or state.settings.keep:
            leftovers.mark_kept(remote.run_dir)
        elif remote.run_dir.is_dir():
            shutil.rmtree(remote.run_dir, ignore_errors=True)
    with contextlib.suppress(OSError):
        state.nodes.run_dir.rmdir()


@pytest.fixture
def machine(
    request: pytest.FixtureRequest, machine_factory: MachineFactory, snapshot_store: SnapshotStore
) -> Target:
    """A machine with the default settings, booted to stage 90: restored from
    the run's snapshot of that state when there is one (`cold_boot`: never)."""
    return snapshot_store.booted(
        machine_factory,
        {},
        snapshots.booted_to_stage_90,
        owner=request.node.nodeid,
        cold=request.node.get_closest_marker("cold_boot") is not None,
    )


def used_machines(item: pytest.Item) -> list[Target | RemoteMachine]:
    """The test's own machines, and the shared ones it acted on (their activity
    grew since it began): a failure report shows their consoles, no others."""
    before = item.stash.get(ACTIVITY, {})
    shared = [m for m in session_machines(item.session) if m.activity > before.get(id(m), 0)]
    return [*item.stash.get(MACHINES, []), *shared]


def session_machines(session: pytest.Session) -> list[Target | RemoteMachine]:
    """The machines of the session's fixtures, and the shared nodes this worker drives."""
    state = session.stash.get(SHARED, None)
    return [*session.stash.get(MACHINES, []), *(state.nodes.remotes if state else [])]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    item.stash[ACTIVITY] = {id(m): m.activity for m in session_machines(item.session)}
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    if report.failed:
        for machine in used_machines(item):
            report.sections.append(
                (f"console of {machine.config.name} (last 40 lines)", machine.console.tail(40))
            )
            report.sections.append((f"artefacts of {machine.config.name}", str(machine.run_dir)))
        record_failure(report, Settings.from_config(item.config).artifacts / FAILURES_DIR)
    return report


MACHINE_FIXTURES = {"machine", "machine_factory", "session_machine_factory", "scenario"}
RELEASE_SKIP = "needs the test shell, which only the test flavour has (--flavour release)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the release image only console_only tests boot machines."""
    if config.getoption("flavour") != "release":
        return
    for item in items:
        boots = MACHINE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if boots and not item.get_closest_marker("console_only"):
            item.add_marker(pytest.mark.skip(reason=RELEASE_SKIP))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Remove what killed runs left (the controller only: workers start later)."""
    if hasattr(session.config, "workerinput"):
        return
    removed = leftovers.remove_leftovers(Settings.from_config(session.config).artifacts)
    if removed:
        log.info("removed %d leftovers of killed runs", len(removed))


def record_failure(report: pytest.TestReport, directory: Path) -> Path:
    """Write a failing report, with its sections (console tails), to a file the
    moment it is made: `-x`, a crash of the controller or a lost terminal cannot
    lose the failure text of a flaky test."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{run_dir_name(report.nodeid)}-{report.when}.txt"
    sections = "".join(f"\n--- {title} ---\n{text}\n" for title, text in report.sections)
    path.write_text(f"{report.nodeid} ({report.when})\n{report.longreprtext}\n{sections}")
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    verdict = accel.cached_verdict()
    if verdict:
        terminalreporter.write_line(
            f"kubesolo-harness: accelerator {verdict.accel}: {verdict.reason}"
        )


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The JUnit report is shared on purpose (pytest wrote it at the session's end); its
    directory is the user's choice (--junitxml ~/r.xml) and keeps its mode."""
    xml = getattr(config.option, "xmlpath", None)
    if xml and not hasattr(config, "workerinput") and Path(xml).is_file():
        share(Path(xml))
