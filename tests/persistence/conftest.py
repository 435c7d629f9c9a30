"""Fixtures of the persistence suite. Scenarios boot one machine (or two on one disk) per
module and parameter, and several tests check what that machine really did: boots stay
few, and each test still proves one behaviour."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from persistence_state import Marker

from harness.artefact import Image
from harness.disk import create_overlay

_names = itertools.count()


@pytest.fixture(scope="module")
def marker() -> Marker:
    return Marker(uuid.uuid4().hex[:16])


@pytest.fixture(scope="session")
def machine_name() -> Callable[[str], str]:
    """A machine name unique across xdist workers (run directories are per name)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return lambda scenario: f"{scenario}-{worker}-{next(_names)}"


@pytest.fixture(scope="session")
def data_disk_overlay(
    kubesolo_image: Image, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """`data_disk_overlay(name) -> Path`: a fresh qcow2 overlay over the image's blank
    data disk, for machines that must share one disk or whose disk is hashed."""

    def make(name: str) -> Path:
        directory = tmp_path_factory.mktemp(name)
        return create_overlay(kubesolo_image.data_disk, directory / "data.qcow2")

    return make
