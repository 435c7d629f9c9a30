"""nginx behind a Service answers HTTP 200, in-cluster and from the host.

Proves docs/kubesolo.md "Networking" (bridge CNI, pods 10.42.0.0/16, kube-proxy, services
10.43.0.0/16, NodePorts 30000-32767): a Deployment is reachable through its ClusterIP and
a NodePort.
"""

from __future__ import annotations

import ipaddress

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.kubesolo import POD_NETWORK, SERVICE_NETWORK
from harness.k8s.node import KubeNode
from harness.k8s.probes import parse_http_status

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NGINX_PAGE = "Welcome to nginx!"
NODE_PORT = 30080
SERVICE_NET = ipaddress.ip_network(SERVICE_NETWORK)
POD_NET = ipaddress.ip_network(POD_NETWORK)
# A refused connection fails at once: 30 tries span a minute or more, what kube-proxy
# (min-sync-period 10 s) and iptables-restore under TCG may take to program a new Service.
ATTEMPTS = 30


def deploy_nginx(kube: KubeNode, namespace: str) -> str:
    """nginx rolled out; returns the ClusterIP of its Service."""
    kube.apply("nginx", namespace)
    kube.wait_rollout(namespace, "nginx")
    service = kube.core.read_namespaced_service(
        "nginx", namespace, _request_timeout=REQUEST_TIMEOUT
    )
    return str(service.spec.cluster_ip)


def test_nginx_answers_through_cluster_ip(kube: KubeNode, k8s_namespace: str) -> None:
    """The Service gets a ClusterIP from the service network, nginx's pod an address from
    the bridge CNI's pod network, and a client pod gets nginx's page with status 200
    through the ClusterIP (kube-proxy's rules)."""
    cluster_ip = deploy_nginx(kube, k8s_namespace)
    assert ipaddress.ip_address(cluster_ip) in SERVICE_NET
    pod_ips = {p.status.pod_ip for p in kube.deployment_pods(k8s_namespace, "nginx")}
    assert pod_ips and all(ipaddress.ip_address(ip) in POD_NET for ip in pod_ips), pod_ips
    phase, output = kube.run_pod(
        k8s_namespace,
        "http-probe",
        "client",
        ACCESS="any",
        URL=f"http://{cluster_ip}/",
        SETTLE=0,
        ATTEMPTS=ATTEMPTS,
    )
    assert phase == "Succeeded", output
    assert parse_http_status(output) == 200, output
    assert NGINX_PAGE in output


def test_nginx_answers_on_node_port_from_host(kube: KubeNode, k8s_namespace: str) -> None:
    """A NodePort Service serves nginx to the host through 127.0.0.1's forward of the port."""
    deploy_nginx(kube, k8s_namespace)
    kube.apply("nginx-nodeport", k8s_namespace, NODE_PORT=NODE_PORT)
    status, body = kube.http_from_host(NODE_PORT)
    assert status == 200
    assert NGINX_PAGE in body
