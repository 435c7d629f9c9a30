"""The node is Ready, its system add-ons run, and cluster DNS answers.

Proves docs/kubesolo.md "Health" (node Ready, CoreDNS and local-path-provisioner rollouts)
and "Networking" (DNS 10.43.0.10, domain cluster.local).
"""

from __future__ import annotations

import re

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.kubesolo import CLUSTER_DNS_IP, SYSTEM_ROLLOUTS
from harness.k8s.node import KubeNode
from harness.k8s.predicates import node_ready, rollout_complete
from harness.k8s.probes import resolved_addresses

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KUBERNETES_FQDN = "kubernetes.default.svc.cluster.local"


def test_single_node_is_ready(kube: KubeNode) -> None:
    """docs/kubesolo.md "Flags": the node is named after the (lowercase RFC 1123) hostname."""
    nodes = kube.core.list_node(_request_timeout=REQUEST_TIMEOUT).items
    assert len(nodes) == 1, [n.metadata.name for n in nodes]
    node = nodes[0]
    assert node_ready(node), node.status.conditions
    assert RFC1123_LABEL.match(node.metadata.name), node.metadata.name


@pytest.mark.parametrize(("namespace", "name"), SYSTEM_ROLLOUTS)
def test_system_deployment_is_rolled_out(kube: KubeNode, namespace: str, name: str) -> None:
    """docs/kubesolo.md "Networking"/"Storage": CoreDNS and local-path-provisioner are available."""
    deployment = kube.apps.read_namespaced_deployment(
        name, namespace, _request_timeout=REQUEST_TIMEOUT
    )
    assert rollout_complete(deployment), deployment.status


def test_kubernetes_service_resolves_from_a_pod(kube: KubeNode, k8s_namespace: str) -> None:
    """docs/kubesolo.md "Networking": a pod's resolver is CoreDNS at 10.43.0.10 and it answers
    kubernetes.default.svc.cluster.local with the API service's ClusterIP."""
    expected = kube.core.read_namespaced_service(
        "kubernetes", "default", _request_timeout=REQUEST_TIMEOUT
    ).spec.cluster_ip
    phase, output = kube.run_pod(
        k8s_namespace, "dns-probe", "dns-probe", LOOKUP=KUBERNETES_FQDN, EXPECT_IP=expected
    )
    assert phase == "Succeeded", output
    assert f"nameserver {CLUSTER_DNS_IP}" in output, output
    assert expected in resolved_addresses(output, KUBERNETES_FQDN), output
