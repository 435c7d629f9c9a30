"""Persistence of a configured network: the static configuration a boot took from
cloud-init is the configuration of the next boot, even once the cloud-init file is gone.

(With DHCP, test_reboot.py proves the same; under QEMU's DHCP the address is always
10.0.2.15, so this module is what shows that the *chosen* configuration is kept.)

One machine, three boots: boot 1 writes fixtures/cloud-init/static.yaml to
/etc/kubesolo/cloud-init.yaml (on the data partition); boot 2 configures the network from
it; the file is deleted; boot 3 must come up with boot 2's configuration."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from persistence_state import probe_all

from harness.pytest.snapshots import booted_to_stage_90

pytestmark = pytest.mark.persistence

CLOUD_INIT = Path(__file__).resolve().parents[2] / "fixtures" / "cloud-init" / "static.yaml"
CLOUD_INIT_GUEST = "/etc/kubesolo/cloud-init.yaml"
STATIC_ADDRESS = "10.0.2.50/24"  # the address of static.yaml
NETWORK_PROBES = ("addresses", "default-route", "dns")


@dataclass(frozen=True)
class TwoBoots:
    configured: dict[str, str]  # boot 2: from cloud-init
    next_boot: dict[str, str]  # boot 3: cloud-init file deleted


@pytest.fixture(scope="module")
def two_boots(session_machine_factory, snapshot_store, machine_name) -> Iterator[TwoBoots]:
    """A default machine (restored from the run's snapshot when there is one:
    docs/architecture.md "Snapshots"), then the two boots that matter, cold."""
    name = machine_name("saved-network")
    vm = snapshot_store.booted(
        session_machine_factory, {"name": name}, booted_to_stage_90, owner=name
    )
    vm.succeed(f"printf '%s' {shlex.quote(CLOUD_INIT.read_text())} > {CLOUD_INIT_GUEST}")
    vm.reboot()
    vm.wait_for_boot()
    configured = probe_all(vm, (*NETWORK_PROBES, "net-source"))
    vm.succeed(f"rm {CLOUD_INIT_GUEST}")
    vm.reboot()
    vm.wait_for_boot()
    next_boot = probe_all(vm, (*NETWORK_PROBES, "net-source"))
    yield TwoBoots(configured, next_boot)
    vm.close()


def _check_cloud_init_applied(configured: dict[str, str]) -> None:
    """The premise: the boot before took its network from cloud-init."""
    assert configured["net-source"] == "cloud-init", (
        f"premise failed: stage 50 did not use {CLOUD_INIT_GUEST} (state {configured})"
    )
    assert f"inet {STATIC_ADDRESS}" in configured["addresses"], configured


@pytest.mark.parametrize("name", NETWORK_PROBES)
def test_static_network_is_kept_on_next_boot(two_boots: TwoBoots, name: str):
    """Stage 50 — Network (saved config first): the address, default route and DNS
    servers that cloud-init gave one boot are those of the next boot, without
    cloud-init."""
    _check_cloud_init_applied(two_boots.configured)
    assert two_boots.configured[name], f"premise failed: no {name} on the configured boot"
    assert two_boots.next_boot[name] == two_boots.configured[name]


def test_next_boot_uses_the_saved_configuration(two_boots: TwoBoots):
    """Stage 50 — Network: the next boot took its network from the saved
    configuration on the data partition (/mnt/data/network/interfaces.sh)."""
    _check_cloud_init_applied(two_boots.configured)
    assert two_boots.next_boot["net-source"] == "saved", two_boots.next_boot
