"""Fixtures of the runtime suite (test_runtime_*.py): the runtime tools and the
workload images, built once per session from Debian packages, and one booted
runtime node per test module (a boot costs tens of seconds under TCG)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_node import RuntimeNode, boot_runtime_node, gzipped, keep_refs

from harness.build.runtime_tools import build_runtime_tools
from harness.build.workload_images import BUSYBOX_REF, build_workload_images
from harness.errors import UserError
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
    runtime_tools: Path,
    runtime_images: Path,
) -> Iterator[RuntimeNode]:
    """A test image booted with the runtime up and the workload images imported
    (with the k8s suite's own preload); powered off after the module."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{request.module.__name__.removeprefix('test_')}-{worker}"
    node = boot_runtime_node(session_machine_factory, runtime_tools, runtime_images, name=name)
    node.preload(runtime_images)
    yield node
    node.machine.close()
