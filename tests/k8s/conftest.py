"""Fixtures of the runtime suite (test_runtime_*.py): the runtime tools and the
workload images, built once per session from Debian packages; one runtime
node shared by every worker of the run, and a node of its own for a module
whose test reboots it, restored from the run's snapshot of the shared node
brought up (booted, containerd serving, images imported): a bring-up costs
tens of seconds under TCG (docs/architecture.md "Shared nodes", "Snapshots")."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

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
from harness.pytest.shared_nodes import SharedNodes
from harness.pytest.snapshots import SnapshotStore, Up, directory_digest
from harness.vm.machine import Machine
from harness.vm.relay import RemoteMachine
from harness.vm.target import Target

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


def brought_up_with(images: Path) -> Up:
    """The runtime node's "up": containerd serving, `images` imported with the k8s
    suite's own preload, the shares unmounted (what containerd runs is in RAM or
    on the data disk by then), so that the node can be saved."""

    def brought_up(vm: Target) -> None:
        vm.wait_for_boot()
        node = RuntimeNode(on_qemu(vm))
        node.bring_up()
        node.preload(images)
        node.release_shares()

    return brought_up


def on_qemu(vm: Target) -> Machine | RemoteMachine:
    """The suite is marked qemu_only: its tools reach the guest over 9p."""
    assert isinstance(vm, Machine | RemoteMachine), vm
    return vm


def node_settings(tools: Path, images: Path) -> tuple[dict[str, Any], str]:
    """The node's MachineConfig fields, and what its shares hold (the snapshot key's)."""
    shares = {TOOLS_TAG: tools, IMAGES_SHARE_TAG: images}
    held = f"tools {tools.name}, images {directory_digest(images)}"
    return {"shares": shares, "memory_mb": MEMORY_MB}, held


@pytest.fixture(scope="session")
def runtime_node(
    shared_nodes: SharedNodes, runtime_tools: Path, runtime_images: Path
) -> RuntimeNode:
    """The runtime node of the run, shared by every worker: the first to ask
    brings it up, the others drive it through its owner's relay."""
    settings, held = node_settings(runtime_tools, runtime_images)
    up = brought_up_with(runtime_images)
    vm = shared_nodes.node("runtime", settings, up, extra=held, shares_released=True)
    return RuntimeNode(on_qemu(vm))


@pytest.fixture(scope="module")
def own_runtime_node(
    request: pytest.FixtureRequest,
    session_machine_factory: Callable[..., Target],
    snapshot_store: SnapshotStore,
    runtime_tools: Path,
    runtime_images: Path,
) -> Iterator[RuntimeNode]:
    """A runtime node of the module's own (its tests may reboot it), restored from
    the run's snapshot of the shared node's state; powered off after the module."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{request.module.__name__.removeprefix('test_')}-{worker}"
    settings, held = node_settings(runtime_tools, runtime_images)
    vm = snapshot_store.booted(
        session_machine_factory,
        {**settings, "name": name},
        brought_up_with(runtime_images),
        extra=held,
        owner=name,
        shares_released=True,
    )
    yield RuntimeNode(on_qemu(vm))
    vm.close()
