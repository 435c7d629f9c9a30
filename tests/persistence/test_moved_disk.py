"""The data disk of one machine, moved to another machine (a second QEMU
process with another MAC address), boots with the first machine's state.

The first machine boots on a fresh disk, writes a marker into every persistent path,
syncs and is powered off; the second machine boots from the same qcow2 file. Its own
MAC would give it the hostname kubesolo-abcdef: it must keep the first machine's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from persistence_state import PERSISTENT_PATHS, Marker, path_id, probe, probe_all

from harness.vm.config import default_mac
from harness.vm.protocols import Target

pytestmark = [
    pytest.mark.persistence,
    pytest.mark.qemu_only("a second QEMU machine, with another MAC, on the same disk file"),
]

HOSTNAME_PROBES = ("hostname", "etc-hostname")
SECOND_MAC = "52:54:00:ab:cd:ef"


@dataclass(frozen=True)
class MovedDisk:
    first: dict[str, str]  # the first machine's hostname
    second: Target  # booted on the first machine's disk


@pytest.fixture(scope="module")
def moved_disk(
    session_machine_factory, machine_name, data_disk_overlay, marker: Marker
) -> Iterator[MovedDisk]:
    disk = data_disk_overlay("moved-disk")
    first = session_machine_factory(name=machine_name("moved-disk-first"), data_disk=disk)
    first.start()
    first.wait_for_boot()
    identity = probe_all(first, HOSTNAME_PROBES)
    for directory in PERSISTENT_PATHS:
        marker.write(first, directory)
    first.succeed("sync")
    first.power_off()
    assert not first.is_up
    second = session_machine_factory(
        name=machine_name("moved-disk-second"), data_disk=disk, macs=(SECOND_MAC,)
    )
    second.start()
    second.wait_for_boot()
    yield MovedDisk(identity, second)
    second.close()


@pytest.mark.parametrize("directory", PERSISTENT_PATHS, ids=path_id)
def test_moved_disk_keeps_files(moved_disk: MovedDisk, marker: Marker, directory: str):
    """Stage 20 — Persistent Mount: the second machine finds the files the first wrote
    under each persistent path."""
    assert marker.read(moved_disk.second, directory) == marker.token, (
        f"{marker.file_in(directory)} written by the first machine is missing on the second"
    )


@pytest.mark.parametrize("name", HOSTNAME_PROBES)
def test_moved_disk_keeps_hostname(moved_disk: MovedDisk, name: str):
    """Stage 60 — Hostname (saved hostname first): the second machine, whose MAC would
    give another name, takes the hostname saved by the first."""
    assert moved_disk.first[name] == "kubesolo-" + default_mac(0).replace(":", "")[-6:]
    assert probe(moved_disk.second, "mac") == SECOND_MAC, "premise: the second MAC differs"
    assert probe(moved_disk.second, name) == moved_disk.first[name]
