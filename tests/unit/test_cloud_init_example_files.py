"""The cloud-init examples (fixtures/cloud-init/README.md): each is read by
the OS's own flattener exactly as a YAML parser reads it, the four kinds the
upstream project shipped are there, and the air-gapped files agree with each
other and with the guest paths."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from harness import guest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "fixtures/cloud-init"
FLATTENER = REPO / "build/rootfs/usr/lib/kubesolo-os/cloud-init.awk"
AIR_GAPPED = EXAMPLES / "air-gapped"


def flattened_by_the_os(path: Path) -> list[str]:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox not found: install busybox-static (README test command does)")
    done = subprocess.run(
        [busybox, "awk", "-f", str(FLATTENER), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def flattened_by_yaml(value: object, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [
            line
            for key, item in value.items()
            for line in flattened_by_yaml(item, f"{prefix}{key}.")
        ]
    if isinstance(value, list):
        return [line for item in value for line in flattened_by_yaml(item, prefix)]
    text = {True: "true", False: "false"}.get(value, value) if isinstance(value, bool) else value
    return [f"{prefix[:-1]}={text}"]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_os_reads_each_example_as_yaml_does(example):
    assert flattened_by_the_os(example) == flattened_by_yaml(yaml.safe_load(example.read_text()))


def test_the_four_upstream_kinds_are_there():
    """DHCP, static IP, Portainer Edge, air-gapped."""
    kinds = {p.stem for p in EXAMPLES.glob("*.yaml")}
    assert {"dhcp", "static", "portainer-edge", "air-gapped"} <= kinds


def test_portainer_example_values():
    values = yaml.safe_load((EXAMPLES / "portainer-edge.yaml").read_text())
    assert set(values) == {"portainer"}  # and no network: DHCP
    assert set(values["portainer"]) == {"edge-id", "edge-key", "edge-async"}


def test_air_gapped_network_has_no_gateway():
    network = yaml.safe_load((EXAMPLES / "air-gapped.yaml").read_text())["network"]
    assert set(network) == {"address", "dns"}


def test_air_gapped_drop_in_points_at_its_mirror_file():
    etc = dict(guest.BIND_MOUNTS)["etc-kubesolo"]
    drop_in = tomllib.loads((AIR_GAPPED / "etc-kubesolo/containerd/config.toml").read_text())
    assert drop_in["version"] == 3
    config_path = drop_in["plugins"]["io.containerd.cri.v1.images"]["registry"]["config_path"]
    assert config_path == f"{etc}/containerd/certs.d"
    hosts = AIR_GAPPED / "etc-kubesolo/containerd/certs.d/docker.io/hosts.toml"
    mirrors = tomllib.loads(hosts.read_text())["host"]
    assert mirrors == {"http://10.0.2.100:5000": {"capabilities": ["pull", "resolve"]}}
