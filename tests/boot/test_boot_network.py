"""Stage 50 — Network: DHCP on the first physical interface, cloud-init,
and the saved configuration (docs/boot-flow.md "Stage 50 — Network")."""

from __future__ import annotations

import pytest
import yaml
from boot_guest import (
    GUEST_IP,
    ipv4_addresses,
    network_env,
    physical_ifaces,
    preseeded_data_disk,
    wait_for_kubesolo,
)
from boot_scenarios import CLOUD_INIT_FIXTURES

from harness import guest

pytestmark = pytest.mark.boot

SAVED_CONFIG = f"{guest.DATA_MNT}/network/interfaces.sh"


def default_route(vm) -> list[str]:
    return vm.succeed("ip -4 route show default").split()


def nameservers(vm) -> list[str]:
    lines = vm.succeed("cat /etc/resolv.conf").splitlines()
    return [line.split()[1] for line in lines if line.startswith("nameserver ")]


def all_ipv4(vm) -> str:
    return vm.succeed("ip -4 -o addr show")


def test_dhcp_on_first_physical_interface(scenario):
    """docs/boot-flow.md "Stage 50 — Network" (DHCP fallback): with no saved config and
    no cloud-init, loopback is up and udhcpc on the first physical interface
    gives the guest QEMU's 10.0.2.15. (Restricted user networking offers no
    router or DNS option in its lease, so none is checked here.)"""
    vm = scenario("default")
    env = network_env(vm)
    assert env["NET_SOURCE"] == "dhcp"
    assert env["NET_IFACE"] == physical_ifaces(vm)[0]
    assert ipv4_addresses(vm, env["NET_IFACE"]) == [f"{GUEST_IP}/24"]
    assert env["NET_ADDRESS"] == GUEST_IP
    assert "UP" in vm.succeed("ip -o link show dev lo")


@pytest.mark.qemu_only("a second NIC")
def test_second_nic_is_not_the_primary(machine_factory):
    """docs/boot-flow.md "Stage 50 — Network": with two NICs, DHCP runs on the first
    physical interface (lowest ifindex, virtual ones skipped), which is the
    machine's first NIC; the second stays unconfigured. Stage 60 names the
    node after that primary interface's MAC."""
    macs = ("52:54:00:aa:00:01", "52:54:00:bb:00:02")
    vm = machine_factory(nics=2, macs=macs)
    vm.start()
    wait_for_kubesolo(vm)
    ifaces = physical_ifaces(vm)
    assert len(ifaces) == 2, ifaces
    env = network_env(vm)
    primary, other = ifaces
    assert env["NET_IFACE"] == primary
    assert vm.succeed(f"cat /sys/class/net/{primary}/address").strip() == macs[0]
    assert ipv4_addresses(vm, primary) == [f"{GUEST_IP}/24"]
    assert ipv4_addresses(vm, other) == []
    assert vm.succeed("hostname").strip() == "kubesolo-" + macs[0].replace(":", "")[-6:]


def cloud_init_network(fixture: str) -> dict:
    return yaml.safe_load((CLOUD_INIT_FIXTURES / fixture).read_text())["network"]


@pytest.mark.parametrize(
    ("scenario_name", "fixture"),
    [
        pytest.param("cloudinit-default", "static.yaml", id="default-path"),
        pytest.param("cloudinit-path", "static-inline-lists.yaml", id="kubesolo.cloudinit"),
    ],
)
def test_cloud_init_static_address_wins_over_dhcp(scenario, scenario_name, fixture):
    """docs/boot-flow.md "Stage 50 — Network" priority 2: a cloud-init file with a static
    address (at /etc/kubesolo/cloud-init.yaml, or where kubesolo.cloudinit=
    points) configures the network instead of DHCP, and the configuration
    is saved for the next boot."""
    vm = scenario(scenario_name)
    expected = cloud_init_network(fixture)
    env = network_env(vm)
    assert env["NET_SOURCE"] == "cloud-init"
    iface = expected.get("interface", physical_ifaces(vm)[0])
    assert env["NET_IFACE"] == iface
    assert ipv4_addresses(vm, iface) == [expected["address"]]
    assert f"{GUEST_IP}/" not in all_ipv4(vm), "DHCP configured an address as well"
    route = default_route(vm)
    assert route[route.index("via") + 1] == expected["gateway"]
    assert nameservers(vm) == expected["dns"]
    assert f"NET_ADDRESS='{expected['address']}'" in vm.succeed(f"cat {SAVED_CONFIG}")


def test_saved_config_wins_on_next_boot(machine_factory, tmp_path):
    """docs/boot-flow.md "Stage 50 — Network" priority 1: the configuration saved on the
    first boot (from cloud-init) wins on the next boot over DHCP and over a
    cloud-init file that now says something else."""
    first = cloud_init_network("static.yaml")["address"]
    disk = preseeded_data_disk(
        tmp_path,
        {"etc-kubesolo/cloud-init.yaml": (CLOUD_INIT_FIXTURES / "static.yaml").read_text()},
    )
    vm = machine_factory(data_disk=disk)
    vm.start()
    wait_for_kubesolo(vm)
    assert network_env(vm)["NET_SOURCE"] == "cloud-init"
    vm.succeed(f"test -s {SAVED_CONFIG}")
    changed = "10.0.2.77/24"
    vm.succeed(f"sed -i 's|{first}|{changed}|' /etc/kubesolo/cloud-init.yaml && sync")
    assert changed in vm.succeed("cat /etc/kubesolo/cloud-init.yaml")

    vm.reboot()
    wait_for_kubesolo(vm)
    env = network_env(vm)
    assert env["NET_SOURCE"] == "saved"
    assert ipv4_addresses(vm, env["NET_IFACE"]) == [first]
    addresses = all_ipv4(vm)
    assert changed not in addresses and f"{GUEST_IP}/" not in addresses
