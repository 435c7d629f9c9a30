"""Fixtures of the runtime suite (test_runtime_*.py): the runtime tools and the
workload images, built once per session from Debian packages, and one runtime
node per test module, restored from the run's snapshot of a node brought up
(booted, containerd serving, images imported) when there is one: a bring-up
costs tens of seconds under TCG (docs/architecture.md "Snapshots")."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_node import (
    MEMORY_MB,
    TOOLS_TAG,
    RuntimeNode,
    gzipped,
    keep_refs,
)

from harness.build.runtime_tools import build_runtime_tools
from harness.build.workload_images import BUSYBOX_REF, build_workload_images
from harness.errors import UserError
from harness.k8s.commands import IMAGES_SHARE_TAG
from harness.pytest.snapshots import SnapshotStore, directory_digest
from harness.vm.machine import Machine

# The suite's image share: nginx as a plain archive, busybox gzipped and naming
# only busybox:stable, so that the preload's gunzip pipe and its `images tag`
# (busybox:latest, what local-path's helper pod runs) both run for real.
NGINX_ARCHIVE = "nginx.tar"
BUSYBOX_ARCHIVE = "busybox-stable.tar.gz"


@pytest.fixture(scope="session")
def runtime_tools() -> Path:
    try:
        return build_runtime_tools().path
    except UserError as error:
        pytest.fail(f"runtime tools: {error}", pytrace=False)


@pytest.fixture(scope="session")
def runtime_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of image archives built here from Debian packages."""
    built = tmp_path_factory.mktemp("runtime-built")
    try:
        archives = build_workload_images(built)
    except UserError as error:
        pytest.fail(f"workload images: {error}", pytrace=False)
    share = tmp_path_factory.mktemp("runtime-images")
    (share / NGINX_ARCHIVE).write_bytes(archives["nginx"].read_bytes())
    busybox = keep_refs(archives["busybox"].read_bytes(), [BUSYBOX_REF])
    (share / BUSYBOX_ARCHIVE).write_bytes(gzipped(busybox))
    return share


@pytest.fixture(scope="module")
def runtime_node(
    request: pytest.FixtureRequest,
    session_machine_factory: Callable[..., Machine],
    snapshot_store: SnapshotStore,
    runtime_tools: Path,
    runtime_images: Path,
) -> Iterator[RuntimeNode]:
    """A test image with the runtime up and the workload images imported (with the
    k8s suite's own preload), its shares unmounted; powered off after the module."""

    def brought_up(vm: Machine) -> None:
        vm.wait_for_boot()
        node = RuntimeNode(vm)
        node.bring_up()
        node.preload(runtime_images)
        node.release_shares()

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{request.module.__name__.removeprefix('test_')}-{worker}"
    shares = {TOOLS_TAG: runtime_tools, IMAGES_SHARE_TAG: runtime_images}
    held = f"tools {runtime_tools.name}, images {directory_digest(runtime_images)}"
    vm = snapshot_store.booted(
        session_machine_factory,
        {"name": name, "shares": shares, "memory_mb": MEMORY_MB},
        brought_up,
        extra=held,
        owner=name,
        shares_released=True,
    )
    yield RuntimeNode(vm)
    vm.close()
