"""After a reboot the node is Ready again and nginx serves again.

Proves docs/boot-flow.md "Stage 20" (Kubernetes state on the data partition) together with
docs/kubesolo.md "Files and ports" (the kubeconfig stays across boots) — Ready is checked
against the *new* boot id, so a stale Ready=True cannot pass.
"""

from __future__ import annotations

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.node import KubeNode
from harness.k8s.predicates import node_boot_id, node_ready
from harness.k8s.probes import parse_http_status

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NGINX_PAGE = "Welcome to nginx!"
NODE_PORT = 30081  # not test_k8s_nginx's: that namespace may still be terminating
ATTEMPTS = 30  # a refused connection fails at once; kube-proxy may need a minute under TCG


def test_node_and_nginx_come_back_after_reboot(kube: KubeNode, k8s_namespace: str) -> None:
    """nginx serves before the reboot; after it, the node is Ready on a new boot and the
    same Deployment serves on its ClusterIP and on the host's NodePort forward."""
    kube.apply("nginx", k8s_namespace)
    kube.apply("nginx-nodeport", k8s_namespace, NODE_PORT=NODE_PORT)
    kube.wait_rollout(k8s_namespace, "nginx")
    assert kube.http_from_host(NODE_PORT)[0] == 200
    before = node_boot_id(kube.node())

    kube.reboot()

    node = kube.node()
    assert node_ready(node)
    assert node_boot_id(node) != before
    kube.wait_rollout(k8s_namespace, "nginx")
    status, body = kube.http_from_host(NODE_PORT)
    assert status == 200 and NGINX_PAGE in body
    service = kube.core.read_namespaced_service(
        "nginx", k8s_namespace, _request_timeout=REQUEST_TIMEOUT
    )
    ip = service.spec.cluster_ip
    phase, output = kube.run_pod(
        k8s_namespace,
        "http-probe",
        "client-after-reboot",
        ACCESS="any",
        URL=f"http://{ip}/",
        SETTLE=0,
        ATTEMPTS=ATTEMPTS,
    )
    assert phase == "Succeeded" and parse_http_status(output) == 200, output
