"""The cloud-init examples the OS acts on, booted (fixtures/cloud-init/README.md;
docs/boot-flow.md "Stage 90 — KubeSolo" and "Stage 80 — Containerd"):
Portainer Edge settings reach KubeSolo's command line with the key kept off
the console log, and an air-gapped node gets its static address, no default
route, and its registry-mirror drop-in."""

from __future__ import annotations

import re

import pytest
import yaml
from boot_guest import console_lines, ipv4_addresses, network_env, standin_argv, wait_for_kubesolo
from boot_scenarios import CLOUD_INIT_FIXTURES

from harness import guest

pytestmark = pytest.mark.boot

ETC_KUBESOLO = dict(guest.BIND_MOUNTS)["etc-kubesolo"]
AIR_GAPPED = CLOUD_INIT_FIXTURES / "air-gapped/etc-kubesolo"


def example(name: str) -> dict:
    return yaml.safe_load((CLOUD_INIT_FIXTURES / f"{name}.yaml").read_text())


def test_dhcp_example_falls_back_to_dhcp(scenario):
    """docs/boot-flow.md "Stage 50 — Network": the DHCP example has no
    network.address, so stage 50 says so once and takes a DHCP lease."""
    vm = scenario("cloudinit-dhcp")
    wait_for_kubesolo(vm)
    assert network_env(vm)["NET_SOURCE"] == "dhcp"
    warned = [line for line in console_lines(vm) if "has no network.address" in line]
    file = f"{ETC_KUBESOLO}/cloud-init.yaml"
    assert warned == [f"{guest.INIT_PREFIX} [WARN] cloud-init file {file} has no network.address"]


def test_portainer_edge_settings_reach_kubesolo(scenario):
    """docs/boot-flow.md "Stage 90 — KubeSolo": the example's Edge ID, key and
    async mode become --portainer-edge-id, --portainer-edge-key and
    --portainer-edge-async, which the stand-in accepts with KubeSolo's
    grammar; the network is DHCP's, as the example has no address."""
    portainer = example("portainer-edge")["portainer"]
    vm = scenario("cloudinit-portainer")
    wait_for_kubesolo(vm)
    argv = standin_argv(vm)
    assert f"--portainer-edge-id={portainer['edge-id']}" in argv
    assert f"--portainer-edge-key={portainer['edge-key']}" in argv
    assert "--portainer-edge-async" in argv
    assert network_env(vm)["NET_SOURCE"] == "dhcp"


@pytest.mark.parametrize("scenario_name", ["cloudinit-portainer", "cloudinit-portainer-debug"])
def test_portainer_edge_key_is_redacted_in_the_init_log(scenario, scenario_name):
    """docs/boot-flow.md "Stage 90 — KubeSolo": the Edge key is a secret;
    stage 90's log line shows <redacted> in its place, and nothing else on
    the console shows it, kubesolo.debug's shell trace included. (The
    stand-in's own line, test images only, does.)"""
    key = example("portainer-edge")["portainer"]["edge-key"]
    vm = scenario(scenario_name)
    wait_for_kubesolo(vm)
    lines = console_lines(vm)
    (starting,) = [line for line in lines if "Starting KubeSolo:" in line]
    assert "--portainer-edge-key=<redacted>" in starting.split()
    showing = [line for line in lines if key in line]
    assert showing and all(re.match(guest.STANDIN_ACCEPTED, line) for line in showing)


def test_air_gapped_node(scenario):
    """docs/boot-flow.md "Stage 50 — Network" and "Stage 80 — Containerd": the
    air-gapped example's static address and name server, no default route,
    and its containerd drop-in installed where KubeSolo's containerd imports
    it, pointing at the mirror file the node holds."""
    network = example("air-gapped")["network"]
    vm = scenario("cloudinit-air-gapped")
    wait_for_kubesolo(vm)
    env = network_env(vm)
    assert env["NET_SOURCE"] == "cloud-init"
    assert ipv4_addresses(vm, env["NET_IFACE"]) == [network["address"]]
    assert vm.succeed("ip -4 route show default").strip() == ""
    assert vm.succeed("cat /etc/resolv.conf").split()[-1] == network["dns"][0]
    drop_in = (AIR_GAPPED / "containerd/config.toml").read_text()
    assert vm.succeed("cat /etc/containerd/config.d/50-node.toml") == drop_in
    mirror = "containerd/certs.d/docker.io/hosts.toml"
    assert vm.succeed(f"cat {ETC_KUBESOLO}/{mirror}") == (AIR_GAPPED / mirror).read_text()
