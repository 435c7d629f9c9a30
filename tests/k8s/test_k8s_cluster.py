"""Issue 5, behaviour 1: the node is Ready, its system add-ons run, and cluster DNS answers.

Proves spec/kubesolo-facts.md "How others check a KubeSolo node" (node Ready, CoreDNS and
local-path-provisioner rollouts) and "Networking" (DNS 10.43.0.10, domain cluster.local).
"""

from __future__ import annotations

import re

import pytest

from harness.k8s.node import (
    CLUSTER_DNS_IP,
    SYSTEM_ROLLOUTS,
    KubeNode,
    node_ready,
    resolved_addresses,
    rollout_complete,
)

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KUBERNETES_FQDN = "kubernetes.default.svc.cluster.local"


def test_single_node_is_ready(kube: KubeNode) -> None:
    """Facts "Command line": the node is named after the (lowercase RFC 1123) hostname."""
    nodes = kube.core.list_node().items
    assert len(nodes) == 1, [n.metadata.name for n in nodes]
    node = nodes[0]
    assert node_ready(node), node.status.conditions
    assert RFC1123_LABEL.match(node.metadata.name), node.metadata.name


@pytest.mark.parametrize(("namespace", "name"), SYSTEM_ROLLOUTS)
def test_system_deployment_is_rolled_out(kube: KubeNode, namespace: str, name: str) -> None:
    """Facts "Networking"/"Storage": CoreDNS and local-path-provisioner are available."""
    deployment = kube.apps.read_namespaced_deployment(name, namespace)
    assert rollout_complete(deployment), deployment.status


def test_kubernetes_service_resolves_from_a_pod(kube: KubeNode, k8s_namespace: str) -> None:
    """Facts "Networking": a pod's resolver is CoreDNS at 10.43.0.10 and it answers
    kubernetes.default.svc.cluster.local with the API service's ClusterIP."""
    expected = kube.core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    phase, output = kube.run_pod(
        k8s_namespace, "dns-probe", "dns-probe", LOOKUP=KUBERNETES_FQDN, EXPECT_IP=expected
    )
    assert phase == "Succeeded", output
    assert f"nameserver {CLUSTER_DNS_IP}" in output, output
    assert expected in resolved_addresses(output, KUBERNETES_FQDN), output
