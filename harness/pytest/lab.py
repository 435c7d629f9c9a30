"""The hardware-in-the-loop plugin: with labgrid's `--lg-env FILE` (and
`--lg-coordinator` for a remote lab), the machine fixtures give BoardTargets
on that env's board instead of QEMU machines, and tests marked `qemu_only`
skip with their one-line reason, as do tests marked `console_shell` on a board
whose test shell shares the console's line (docs/architecture.md "Hardware in the loop").

labgrid's own pytest plugin defines the options and makes the Environment;
this one checks the env file first (one line, not a traceback), refuses
xdist (one board serves one test at a time), and opens the board."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.artefact import Image
from harness.errors import UserError
from harness.lab.board import CONSOLE_SHELL_MARK, Board, open_environment
from harness.lab.strategy import strategy_shares_console
from harness.private import private_dir

QEMU_ONLY = "qemu_only"  # the marker (registered with the others in harness.pytest.plugin)


def lab_env_path(config: pytest.Config) -> str | None:
    """The labgrid env file of this run: --lg-env, else labgrid's LG_ENV."""
    import os

    path = config.getoption("lg_env", None)
    return path or os.environ.get("LG_ENV") or None


def on_board(config: pytest.Config) -> bool:
    return lab_env_path(config) is not None


LABGRID_PLUGIN = "labgrid"  # the name of labgrid's pytest11 entry point


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, args: list[str]) -> None:
    """Without --lg-env, labgrid's plugin sits out: the QEMU runs stay as they
    were (its step logger, log format and fixtures are for lab runs, and its
    step logger cannot start twice in one process, as pytester's runs do)."""
    import os

    wanted = os.environ.get("LG_ENV") or any(
        a == "--lg-env" or a.startswith("--lg-env=") for a in args
    )
    manager = early_config.pluginmanager
    if not wanted and manager.get_plugin(LABGRID_PLUGIN) is not None:
        manager.unregister(name=LABGRID_PLUGIN)
        manager.set_blocked(LABGRID_PLUGIN)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    path = lab_env_path(config)
    if path is None:
        return
    try:
        open_environment(path)  # labgrid makes its own after this; errors here are one line
    except UserError as err:
        raise pytest.UsageError(f"--lg-env: {err}") from None
    workers = getattr(config.option, "numprocesses", None)
    if workers not in (None, 0) and not hasattr(config, "workerinput"):
        raise pytest.UsageError("--lg-env: one board serves one test at a time: run with -n 0")


def qemu_only_reason(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker(QEMU_ONLY)
    if marker is None:
        return None
    why = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
    return f"needs QEMU: {why}" if why else "needs QEMU"


SHARED_CONSOLE_SKIP = (
    "types at a shell on the console, which this board's test shell shares "
    '(one UART: docs/architecture.md "Hardware in the loop")'
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not on_board(config):
        return
    env = open_environment(str(lab_env_path(config)))
    shared = strategy_shares_console(env.config.get_targets().get("main", {}).get("drivers", []))
    for item in items:
        reason = qemu_only_reason(item)
        if reason is None and shared and item.get_closest_marker(CONSOLE_SHELL_MARK):
            reason = SHARED_CONSOLE_SKIP
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def lab_board(request: pytest.FixtureRequest, kubesolo_image: Image) -> Iterator[Board | None]:
    """The board of --lg-env (its `main` target), or None: QEMU machines."""
    if not on_board(request.config):
        yield None
        return
    from labgrid.pytestplugin.hooks import LABGRID_ENV_KEY

    env = request.config.stash.get(LABGRID_ENV_KEY, None)
    if env is None:  # labgrid's plugin is disabled: make the env here
        coordinator = request.config.getoption("lg_coordinator", None)
        env = open_environment(str(lab_env_path(request.config)), coordinator)
    artifacts = Path(request.config.getoption("artifacts")).resolve()
    try:
        board = Board(env, kubesolo_image)
        artifacts.mkdir(parents=True, exist_ok=True)
        board.strategy.work_dir = private_dir(artifacts / "lab")
    except UserError as err:
        pytest.fail(str(err), pytrace=False)
    yield board
    board.close()
