"""KubeSolo's pod network without KubeSolo: the kubesolo-net bridge list (bridge
cni0, host-local, portmap, loopback) from Debian's CNI plugins, KubeSolo's pod
masquerade rule and kube-proxy-style service rules, all through the OS's own
kernel modules, sysctls and iptables. One booted node serves the module."""

from __future__ import annotations

import re
import secrets
import urllib.request

import pytest
from runtime_node import (
    BRIDGE,
    MASQUERADE_RULE,
    NETWORK_NAME,
    POD_GATEWAY,
    Container,
    RuntimeNode,
    iptables_packets,
    service_rules,
)

from harness import guest
from harness.build.workload_recipes import BUSYBOX_REF, NGINX_REF
from harness.k8s.kubesolo import POD_NETWORK, SERVICE_NETWORK

pytestmark = [pytest.mark.runtime, pytest.mark.qemu_only("its tools reach the guest over 9p")]

HTTP_PORT = 8080  # busybox httpd in the pods
NODE_HTTP_PORT = 18080  # busybox httpd on the node
HOST_PORT = 8081  # the hostPort portmap publishes on the node
OUTSIDE = "10.0.2.2"  # QEMU's user-network gateway: outside 10.42/16, inside the QEMU process
SERVICE_IP = "10.43.7.7"  # a ClusterIP in the service network
SERVICE_PORT = 80
HOST_LOCAL_LEASES = f"/var/lib/cni/networks/{NETWORK_NAME}"  # host-local's default store
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def web_pod(node: RuntimeNode, text: str) -> Container:
    """A busybox pod on kubesolo-net serving `text` at / on HTTP_PORT."""
    return node.start(
        BUSYBOX_REF,
        "sh",
        "-c",
        f"mkdir -p /www && echo {text} > /www/index.html && httpd -f -p {HTTP_PORT} -h /www",
    )


def fetch(node: RuntimeNode, client: Container, url: str, seconds: int = 15) -> tuple[int, str]:
    """GET url from inside a pod, bounded by busybox timeout (its wget -T segfaults)."""
    return node.exec(client, "timeout", str(seconds), "wget", "-qO-", url)


@pytest.fixture(scope="module")
def client(runtime_node: RuntimeNode) -> Container:
    return runtime_node.start(BUSYBOX_REF, "sleep", "3600")


def test_pods_get_addresses_on_cni0_and_reach_each_other(
    runtime_node: RuntimeNode, client: Container
) -> None:
    """docs/kubesolo.md "Networking": ctr's CNI support runs KubeSolo's network list from
    /etc/cni/net.d: each pod gets a 10.42/16 address behind the bridge cni0 (the gateway,
    10.42.0.1), and one pod reaches another's server."""
    token = secrets.token_hex(8)
    server = web_pod(runtime_node, token)
    bridge = runtime_node.succeed(f"ip -4 -o addr show {BRIDGE}")
    assert f"inet {POD_GATEWAY}/16" in bridge, bridge
    for pod in (server, client):
        assert pod.ip is not None and pod.ip.startswith("10.42."), pod
    assert server.ip != client.ip
    assert fetch(runtime_node, client, f"http://{server.ip}:{HTTP_PORT}/") == (0, f"{token}\n")


def test_pods_reach_the_node_on_its_own_address(
    runtime_node: RuntimeNode, client: Container
) -> None:
    """docs/kubesolo.md "Networking": a pod reaches a server on the node's address (eth0,
    from DHCP) through the bridge gateway and the default route host-local gave it."""
    node_ip = re.search(r"inet (\S+)/", runtime_node.succeed("ip -4 -o addr show eth0"))
    assert node_ip, "the node has no IPv4 address"
    token = secrets.token_hex(8)
    www = f"{guest.RUN_DIR}/node-www"
    runtime_node.succeed(
        f"mkdir -p {www} && echo {token} > {www}/index.html && "
        f"setsid httpd -p {node_ip.group(1)}:{NODE_HTTP_PORT} -h {www} </dev/null >/dev/null 2>&1 &"
    )
    url = f"http://{node_ip.group(1)}:{NODE_HTTP_PORT}/"
    assert fetch(runtime_node, client, url) == (0, f"{token}\n")


def test_traffic_leaving_the_pod_network_is_masqueraded(
    runtime_node: RuntimeNode, client: Container
) -> None:
    """docs/kubesolo.md "Networking" ("iptables"): KubeSolo's own rule
    `-t nat -A POSTROUTING -s 10.42.0.0/16 ! -d 10.42.0.0/16 -j MASQUERADE`, added with the
    OS's iptables, rewrites a pod's packets to the outside: the rule counts them, the
    connection tracker shows replies addressed to the node, and the outside answers."""
    rule_words = ("MASQUERADE", POD_NETWORK, f"!{POD_NETWORK}")
    listing = "iptables -w -t nat -L POSTROUTING -v -n -x"
    assert runtime_node.succeed(f"iptables -w -t nat -S {MASQUERADE_RULE[0]}").count(
        " ".join(MASQUERADE_RULE[1:])
    ), "KubeSolo's masquerade rule is missing"
    before = iptables_packets(runtime_node.succeed(listing), *rule_words)
    status, out = runtime_node.exec(client, "ping", "-c", "1", "-W", "10", OUTSIDE)
    assert status == 0, out
    assert iptables_packets(runtime_node.succeed(listing), *rule_words) > before
    node_ip = runtime_node.succeed("ip -4 -o addr show eth0").split()[3].split("/")[0]
    flows = runtime_node.succeed("cat /proc/net/nf_conntrack")
    assert any(
        f"src={client.ip} dst={OUTSIDE}" in line and f"src={OUTSIDE} dst={node_ip}" in line
        for line in flows.splitlines()
    ), flows


def test_a_host_port_through_portmap_reaches_nginx_from_the_host(
    runtime_node: RuntimeNode,
) -> None:
    """docs/kubesolo.md "Networking": nginx, from the image built here, in a pod whose
    network the list's plugins set up as the CRI plugin does (bridge, then portmap with
    the pod's portMappings, then loopback, each given the previous result), is served on
    the node's hostPort, which QEMU forwards to the host: HTTP 200 on 127.0.0.1."""
    nginx = runtime_node.start(NGINX_REF, cni=False)
    mapping = {"hostPort": HOST_PORT, "containerPort": 80, "protocol": "tcp"}
    runtime_config = {"portMappings": [mapping]}  # the CRI plugin passes it on ADD and DEL
    result = runtime_node.cni("ADD", nginx, runtime_config)
    assert nginx.ip is not None and nginx.ip.startswith("10.42."), result
    rules = runtime_node.succeed("iptables -w -t nat -S CNI-HOSTPORT-DNAT")
    assert f"--dports {HOST_PORT}" in rules, rules
    port = runtime_node.machine.forward_port(HOST_PORT)
    with NO_PROXY.open(f"http://127.0.0.1:{port}/", timeout=60) as response:
        status, body = response.status, response.read().decode(errors="replace")
    assert status == 200
    assert "Welcome to nginx" in body, body[:300]
    runtime_node.cni("DEL", nginx, runtime_config)
    assert f"--dports {HOST_PORT}" not in runtime_node.succeed("iptables -w -t nat -S")
    runtime_node.machine.fail(f"test -e {HOST_LOCAL_LEASES}/{nginx.ip}")  # address released
    runtime_node.remove(nginx)


def test_a_service_ip_dnats_to_its_pod_through_br_netfilter(
    runtime_node: RuntimeNode, client: Container
) -> None:
    """docs/kubesolo.md "Networking" (kube-proxy in iptables mode, services 10.43.0.0/16)
    and docs/boot-flow.md "Stage 40 — Sysctl": kube-proxy-style rules DNAT a ClusterIP to
    a pod on the same bridge. The reply crosses the bridge without routing, so only
    bridge-nf-call-iptables=1 (br_netfilter) lets conntrack undo the DNAT: with it 0 the
    client gets nothing. The pod also reaches itself through the service (hairpin, with
    kube-proxy's masquerade mark)."""
    assert runtime_node.succeed("cat /proc/sys/net/bridge/bridge-nf-call-iptables") == "1\n"
    assert SERVICE_IP.startswith(SERVICE_NETWORK.rsplit(".", 2)[0] + ".")
    token = secrets.token_hex(8)
    server = web_pod(runtime_node, token)
    assert server.ip is not None
    for rule in service_rules(SERVICE_IP, SERVICE_PORT, server.ip, HTTP_PORT):
        runtime_node.succeed(" ".join(rule))
    url = f"http://{SERVICE_IP}:{SERVICE_PORT}/"
    assert fetch(runtime_node, client, url) == (0, f"{token}\n")
    runtime_node.succeed("sysctl -w net.bridge.bridge-nf-call-iptables=0")
    try:
        assert fetch(runtime_node, client, url, seconds=8)[0] != 0
    finally:
        runtime_node.succeed("sysctl -w net.bridge.bridge-nf-call-iptables=1")
    assert fetch(runtime_node, client, url) == (0, f"{token}\n")
    assert fetch(runtime_node, server, url) == (0, f"{token}\n")  # hairpin
    masqueraded = runtime_node.succeed("iptables -w -t nat -L KUBE-POSTROUTING -v -n -x")
    assert iptables_packets(masqueraded, "MASQUERADE") > 0, masqueraded
