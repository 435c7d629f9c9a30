"""The node is this VM, KubeSolo's controllers heal its system add-ons, and cluster DNS
answers.

Proves docs/kubesolo.md "Command line" (the node is named after the hostname), "Networking" (node
IP detection, no scheduler: a webhook sets nodeName; DNS 10.43.0.10, domain cluster.local)
and "Health" (CoreDNS and local-path-provisioner Deployments). Node Ready and the system
rollouts are what bring-up waits for, so nothing here asserts them again.
"""

from __future__ import annotations

import re

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.commands import boot_id_command, ipv4_addresses_command
from harness.k8s.kubesolo import CLUSTER_DNS_IP, SYSTEM_ROLLOUTS
from harness.k8s.node import KubeNode
from harness.k8s.predicates import container_starts, node_addresses, node_boot_id
from harness.k8s.probes import ipv4_addresses, resolved_addresses

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

RFC1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
KUBERNETES_FQDN = "kubernetes.default.svc.cluster.local"


def test_the_node_is_this_vm(kube: KubeNode) -> None:
    """The one node KubeSolo registered carries the guest's hostname (a lowercase RFC 1123
    label), one of the guest's IPv4 addresses and the guest kernel's boot id."""
    node = kube.node()
    hostname = kube.machine.succeed("hostname").strip()
    assert node.metadata.name == hostname
    assert RFC1123_LABEL.match(hostname), hostname
    guest_addresses = ipv4_addresses(kube.machine.succeed(ipv4_addresses_command()))
    internal = node_addresses(node)
    assert internal and internal <= guest_addresses, (internal, guest_addresses)
    assert node_boot_id(node) == kube.machine.succeed(boot_id_command()).strip()


@pytest.mark.parametrize(("namespace", "name"), SYSTEM_ROLLOUTS)
def test_a_deleted_system_pod_is_replaced_on_the_node(
    own_kube: KubeNode, namespace: str, name: str
) -> None:
    """Delete the pods of CoreDNS (or local-path-provisioner): the controller manager
    creates new ones, KubeSolo's webhook (it has no scheduler) binds them to the node, and
    they run and turn Ready. On a node of the test's own: the shared node's DNS must
    not go away under other tests (docs/kubesolo.md "Shared node")."""
    old = own_kube.deployment_pods(namespace, name)
    before = container_starts(old)
    for pod in old:
        own_kube.delete_pod(namespace, pod.metadata.name)
    new = own_kube.wait_restarted(namespace, name, before)
    assert new and not {p.metadata.uid for p in new} & set(before)
    node_name = own_kube.node().metadata.name
    assert {p.spec.node_name for p in new} == {node_name}
    own_kube.wait_rollout(namespace, name)


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
