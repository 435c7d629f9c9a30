"""The pytest plugin (docs/architecture.md "pytest plugins"): the image and
machine fixtures and the run's set-up and clean-up. Its options and markers
are harness.pytest.options, its failure reports harness.pytest.reports, and
it registers the plugins beside it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.artefact import Image
from harness.build import previous
from harness.build.builder import BuildRequest, build
from harness.errors import UserError
from harness.lab.board import Board, BoardTarget, WrongBoard
from harness.log import logger
from harness.private import PRIVATE_UMASK
from harness.process import die_with_parent, keep_grpc_out_of_forks
from harness.pytest import boot_gate, leftovers, reports, run_name, schedule, snapshots
from harness.pytest.options import MARKERS, Settings, add_options, check_options, run_dir_name
from harness.pytest.reports import MACHINES, SHARED, SharedState
from harness.pytest.shared_nodes import SharedNodes
from harness.pytest.snapshots import SnapshotStore
from harness.vm.machine import Machine
from harness.vm.protocols import Target

MachineFactory = Callable[..., Target]  # a QEMU Machine, or a BoardTarget with --lg-env
SHARED_DIR = "shared"  # beside the run's snapshots: who serves each shared node
log = logger("pytest")
# The one setting made on import: labgrid's pytest plugin imports gRPC as it
# loads, which may be right after this module, and gRPC reads the setting
# then (harness.process); xdist's workers inherit it.
keep_grpc_out_of_forks()


# the plugins beside this one, registered before anything configures
SUB_PLUGINS = (
    (run_name, "kubesolo-run-name"),  # before its users configure
    (reports, "kubesolo-reports"),  # its summary line comes last
    (boot_gate, "kubesolo-boot-gate"),  # its options follow ours
    (snapshots, "kubesolo-snapshots"),
    (schedule, "kubesolo-schedule"),
)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    parser.getgroup("kubesolo", "KubeSolo OS harness")  # titled before the others add to it
    for module, name in SUB_PLUGINS:
        if not pluginmanager.is_registered(module):
            pluginmanager.register(module, name)
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # run directories, disks, snapshots (guest RAM), kubeconfigs: ours alone;
    # what is shared on purpose is made readable (harness.private.share)
    os.umask(PRIVATE_UMASK)
    if hasattr(config, "workerinput"):  # an xdist worker: die with the controller
        die_with_parent()
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
    check_options(config)


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
