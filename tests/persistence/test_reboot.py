"""Across a clean reboot and across a hard reset after `sync`,
files under the five persistent paths survive, files on the immutable root do not, and
the node keeps the hostname and network configuration of its first boot.

One machine per restart kind: the first boot records its identity and writes a marker
file into every path; the machine restarts; the tests read the second boot."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from persistence_state import (
    EPHEMERAL_PATHS,
    PERSISTENT_PATHS,
    RESTARTS,
    Marker,
    path_id,
    probe,
    probe_all,
)

from harness.pytest.snapshots import booted_to_stage_90
from harness.vm.protocols import Target

pytestmark = pytest.mark.persistence

HOSTNAME_PROBES = ("hostname", "etc-hostname")
NETWORK_PROBES = ("addresses", "routes")


@dataclass(frozen=True)
class Restarted:
    vm: Target  # booted for the second time
    first_boot: dict[str, str]  # identity probes of the first boot


@pytest.fixture(
    scope="module",
    params=list(RESTARTS),
)
def restarted(
    request: pytest.FixtureRequest,
    session_machine_factory,
    snapshot_store,
    machine_name,
    marker: Marker,
) -> Iterator[Restarted]:
    """A default machine (restored from the run's snapshot when there is one:
    docs/architecture.md "Snapshots"), marked, then restarted cold."""
    name = machine_name(request.param)
    vm = snapshot_store.booted(
        session_machine_factory, {"name": name}, booted_to_stage_90, owner=name
    )
    first_boot = probe_all(vm, HOSTNAME_PROBES + NETWORK_PROBES)
    for directory in PERSISTENT_PATHS + EPHEMERAL_PATHS:
        marker.write(vm, directory)
    RESTARTS[request.param](vm)
    vm.wait_for_boot()
    yield Restarted(vm, first_boot)
    vm.close()


@pytest.mark.parametrize("directory", PERSISTENT_PATHS, ids=path_id)
def test_file_in_persistent_path_survives(restarted: Restarted, marker: Marker, directory):
    """Stage 20 — Persistent Mount: a file written under each bind-mounted path of the
    spec's table is still there, with its content, after the restart."""
    assert marker.read(restarted.vm, directory) == marker.token, (
        f"{marker.file_in(directory)} was lost: {directory} is not kept on the data partition"
    )


@pytest.mark.parametrize("directory", EPHEMERAL_PATHS, ids=path_id)
def test_file_on_root_does_not_survive(restarted: Restarted, marker: Marker, directory):
    """Stage 20 — Persistent Mount (only the table's paths are persistent): a file written
    to the root file system outside them is gone after the restart — the root stays
    immutable."""
    assert marker.read(restarted.vm, directory) is None, (
        f"{marker.file_in(directory)} survived the restart: {directory} must not persist"
    )


@pytest.mark.parametrize("name", HOSTNAME_PROBES)
def test_hostname_is_kept(restarted: Restarted, name: str):
    """Stage 60 — Hostname: the second boot has the hostname of the first (the kernel's
    hostname and /etc/hostname)."""
    assert restarted.first_boot[name].startswith("kubesolo-"), restarted.first_boot
    assert probe(restarted.vm, name) == restarted.first_boot[name]


@pytest.mark.parametrize("name", NETWORK_PROBES)
def test_network_configuration_is_kept(restarted: Restarted, name: str):
    """Stage 50 — Network: the second boot has the IPv4 addresses and routes of the first
    (QEMU's DHCP on the first physical interface both times)."""
    assert "inet 10.0.2.15/24" in restarted.first_boot["addresses"], restarted.first_boot
    assert probe(restarted.vm, name) == restarted.first_boot[name]
