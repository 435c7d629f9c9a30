"""Fixtures of the runtime suite (test_runtime_*.py): the runtime tools and the
workload images, built once per session from Debian packages; one runtime
node shared by every worker of the run, and a node of its own for a test
that reboots it, restored from the run's snapshot of the shared node
brought up (booted, containerd serving, images imported): a bring-up costs
tens of seconds under TCG (docs/architecture.md "Shared nodes", "Snapshots")."""

from __future__ import annotations

from collections.abc import Callable
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
from harness.build.workload_images import build_workload_images
from harness.build.workload_recipes import BUSYBOX_REF
from harness.errors import UserError
from harness.k8s.commands import IMAGES_SHARE_TAG
from harness.pytest.k8s import on_qemu
from harness.pytest.shared_nodes import NodePlan, SharedNodes
from harness.pytest.snapshots import SnapshotStore, Up, directory_digest
from harness.vm.protocols import Target

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


@pytest.fixture(scope="session")
def runtime_plan(runtime_tools: Path, runtime_images: Path) -> NodePlan:
    shares = {TOOLS_TAG: runtime_tools, IMAGES_SHARE_TAG: runtime_images}
    held = f"tools {runtime_tools.name}, images {directory_digest(runtime_images)}"
    settings = {"shares": shares, "memory_mb": MEMORY_MB}
    return NodePlan(settings, brought_up_with(runtime_images), held)


@pytest.fixture(scope="session")
def runtime_node(shared_nodes: SharedNodes, runtime_plan: NodePlan) -> RuntimeNode:
    """The runtime node of the run, shared by every worker: the first to ask
    brings it up, the others drive it through its owner's relay."""
    return RuntimeNode(on_qemu(runtime_plan.shared(shared_nodes, "runtime")))


@pytest.fixture
def own_runtime_node(
    request: pytest.FixtureRequest,
    machine_factory: Callable[..., Target],
    snapshot_store: SnapshotStore,
    runtime_plan: NodePlan,
) -> RuntimeNode:
    """A runtime node of the test's own (it may reboot it), restored from the
    run's snapshot of the shared node's state."""
    vm = runtime_plan.own(snapshot_store, machine_factory, request.node.nodeid)
    return RuntimeNode(on_qemu(vm))
