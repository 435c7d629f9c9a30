"""Shared boot scenarios: one VM per scenario and xdist worker, booted on
first use and only read by the tests that share it (a test that changes a
guest boots its own machine through `machine_factory`)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from boot_guest import (
    preseeded_data_disk,
    wait_for_kubesolo,
)
from boot_scenarios import SCENARIOS

from harness import guest
from harness.pytest.snapshots import SnapshotStore
from harness.vm.protocols import Target


def _shell_prompt(vm: Target) -> None:
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=vm.config.boot_timeout)


UP = {"shell": _shell_prompt, "boot": wait_for_kubesolo}  # Scenario.up: what "up" waits for


@pytest.fixture(scope="session")
def scenario(
    session_machine_factory: Callable[..., Target],
    tmp_path_factory: pytest.TempPathFactory,
    snapshot_store: SnapshotStore,
) -> Callable[[str], Target]:
    """`scenario(name) -> Target`, booted once per run and restored from its
    snapshot by the other workers (docs/architecture.md "Snapshots"); a boot
    that failed fails every test of that scenario with the same error."""
    booted: dict[str, Target | BaseException] = {}

    def get(name: str) -> Target:
        if name not in booted:
            try:
                booted[name] = _boot(name)
            except Exception as err:
                booted[name] = err
                raise
        vm = booted[name]
        if isinstance(vm, BaseException):
            raise RuntimeError(f"scenario {name!r} failed to boot: {vm}") from vm
        return vm

    def _boot(name: str) -> Target:
        spec = SCENARIOS[name]
        settings = dict(spec.settings, name=name)
        if spec.disk_files is not None:
            directory = tmp_path_factory.mktemp(f"disk-{name}")
            settings["data_disk"] = preseeded_data_disk(directory, spec.disk_files)
        disk = json.dumps(spec.disk_files, sort_keys=True)
        return snapshot_store.booted(
            session_machine_factory, settings, UP[spec.up], extra=disk, owner=f"scenario {name}"
        )

    return get
