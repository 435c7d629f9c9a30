"""The runtime suite's pure parts (no VM): containerd's config and the CNI
network list as KubeSolo writes them, a plugin's stdin as the CNI library
builds it, kube-proxy-style rules, and the readers of guest output."""

from __future__ import annotations

import io
import json
import tarfile
import tomllib

import pytest
from runtime_node import (
    CNI_CONF_DIR,
    CNI_PLUGINS_DIR,
    CRUN,
    SOCKET,
    cni_conflist,
    containerd_config,
    gzipped,
    iptables_packets,
    keep_refs,
    mount_propagation,
    plugin_stdin,
    result_ipv4,
    service_rules,
    toml_value,
)

from harness import guest

pytestmark = [pytest.mark.runtime]
KUBESOLO_CONTAINERD = f"{guest.KUBESOLO_PATH}/containerd"  # docs/kubesolo.md "Runtime"


def test_containerd_config_holds_kubesolos_settings():
    config = tomllib.loads(containerd_config())
    assert config["version"] == 2
    assert config["grpc"]["address"] == SOCKET == f"{KUBESOLO_CONTAINERD}/containerd.sock"
    assert config["root"].startswith(f"{KUBESOLO_CONTAINERD}/")
    assert config["imports"] == ["/etc/containerd/config.d/*.toml"]
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    runtime = cri["containerd"]["runtimes"][cri["containerd"]["default_runtime_name"]]
    assert runtime["runtime_type"] == "io.containerd.runc.v2"
    assert runtime["options"] == {"BinaryName": CRUN, "SystemdCgroup": False}
    assert f"{KUBESOLO_CONTAINERD}/crun" == CRUN
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    assert cri["cni"] == {"bin_dir": CNI_PLUGINS_DIR, "conf_dir": CNI_CONF_DIR}


def test_toml_values_are_quoted_as_toml_reads_them():
    quoted, false, array = toml_value('x"y'), toml_value(False), toml_value([1, "z"])
    text = f"a = {quoted}\nb = {false}\nc = {array}\n"
    assert tomllib.loads(text) == {"a": 'x"y', "b": False, "c": [1, "z"]}
    with pytest.raises(TypeError):
        toml_value(1.5)


def test_conflist_is_kubesolos_bridge_network():
    conflist = cni_conflist()
    assert (conflist["name"], conflist["cniVersion"]) == ("kubesolo-net", "1.0.0")
    assert [p["type"] for p in conflist["plugins"]] == ["bridge", "portmap", "loopback"]
    bridge = conflist["plugins"][0]
    assert bridge["bridge"] == "cni0"
    assert bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "10.42.0.0/16"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert json.loads(json.dumps(conflist)) == conflist


def test_plugin_stdin_carries_the_list_the_previous_result_and_only_capable_settings():
    conflist = cni_conflist()
    ports = {"portMappings": [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]}
    first = plugin_stdin(conflist, 0, None, ports)
    assert (first["name"], first["cniVersion"], first["type"]) == (
        "kubesolo-net",
        "1.0.0",
        "bridge",
    )
    assert "prevResult" not in first and "runtimeConfig" not in first  # bridge lacks the capability
    prev = {"cniVersion": "1.0.0", "ips": [{"address": "10.42.0.5/16"}]}
    portmap = plugin_stdin(conflist, 1, prev, ports)
    assert portmap["prevResult"] == prev
    assert portmap["runtimeConfig"] == ports
    assert "plugins" not in portmap
    assert cni_conflist() == conflist  # the list itself is left alone


def test_result_ipv4_skips_ipv6():
    result = {"ips": [{"address": "fd00::5/64"}, {"address": "10.42.0.7/16"}]}
    assert result_ipv4(result) == "10.42.0.7"
    with pytest.raises(ValueError):
        result_ipv4({"ips": [{"address": "fd00::5/64"}]})


def test_service_rules_dnat_the_cluster_ip_and_mark_hairpin_traffic():
    rules = [" ".join(r) for r in service_rules("10.43.7.7", 80, "10.42.0.9", 8080)]
    assert all(r.startswith("iptables -w -t nat ") for r in rules)
    assert any("-I PREROUTING -j KUBE-SERVICES" in r for r in rules)
    assert any("-I OUTPUT -j KUBE-SERVICES" in r for r in rules)
    assert any("-d 10.43.7.7/32 -p tcp --dport 80 -j KUBE-SVC" in r for r in rules)
    assert any("-s 10.42.0.9/32 -j KUBE-MARK-MASQ" in r for r in rules)
    assert any("-j DNAT --to-destination 10.42.0.9:8080" in r for r in rules)
    assert any("-m mark --mark 0x4000/0x4000 -j MASQUERADE" in r for r in rules)
    chains = [r.split()[-1] for r in rules if " -N " in r]
    assert rules[: len(chains)] == [f"iptables -w -t nat -N {c}" for c in chains]  # made first


LISTING = """\
Chain POSTROUTING (policy ACCEPT 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
       7      588 MASQUERADE  0    --  *      *       10.42.0.0/16        !10.42.0.0/16
       3      204 CNI-c5d0  0    --  *      *       10.42.0.3            0.0.0.0/0
"""


def test_iptables_packets_reads_the_rules_counter():
    assert iptables_packets(LISTING, "MASQUERADE", "10.42.0.0/16", "!10.42.0.0/16") == 7
    with pytest.raises(AssertionError):
        iptables_packets(LISTING, "DNAT")


MOUNTINFO = """\
22 1 0:20 / / rw,relatime shared:1 - tmpfs tmpfs rw
61 170 0:86 / /host/late rw,relatime master:24 - tmpfs tmpfs rw
62 170 0:87 / /private rw,relatime - tmpfs tmpfs rw
"""


def test_mount_propagation_of_shared_slave_and_private_mounts():
    assert mount_propagation(MOUNTINFO, "/") == {"shared"}
    assert mount_propagation(MOUNTINFO, "/host/late") == {"master"}
    assert mount_propagation(MOUNTINFO, "/private") == set()
    with pytest.raises(AssertionError):
        mount_propagation(MOUNTINFO, "/nowhere")


def _archive(index: dict) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (("oci-layout", b"{}"), ("index.json", json.dumps(index).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_keep_refs_drops_the_other_names_of_an_archive():
    name = "io.containerd.image.name"
    index = {
        "manifests": [
            {"digest": "sha256:a", "annotations": {name: "docker.io/library/busybox:stable"}},
            {"digest": "sha256:a", "annotations": {name: "docker.io/library/busybox:latest"}},
        ]
    }
    kept = keep_refs(_archive(index), ["docker.io/library/busybox:stable"])
    with tarfile.open(fileobj=io.BytesIO(kept)) as tar:
        names = tar.getnames()
        member = tar.extractfile("index.json")
        assert member is not None
        manifests = json.loads(member.read())["manifests"]
    assert names == ["oci-layout", "index.json"]
    assert [m["annotations"][name] for m in manifests] == ["docker.io/library/busybox:stable"]
    assert gzipped(kept)[:2] == b"\x1f\x8b" and gzipped(kept) == gzipped(kept)
