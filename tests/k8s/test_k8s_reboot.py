"""After a reboot the kubelet reports the new boot, KubeSolo restarts the workload from its
stored state, and nginx serves again.

Proves docs/boot-flow.md "Stage 20" (Kubernetes state on the data partition) together with
docs/kubesolo.md "Files and ports" (the kubeconfig stays across boots) and "Images"
(side-loaded images are imported again after every boot).
"""

from __future__ import annotations

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.commands import boot_id_command
from harness.k8s.node import KubeNode
from harness.k8s.predicates import container_starts, node_boot_id
from harness.k8s.probes import parse_http_status

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

NGINX_PAGE = "Welcome to nginx!"
NODE_PORT = 30081  # not test_k8s_nginx's: that namespace may still be terminating
ATTEMPTS = 30  # a refused connection fails at once; kube-proxy may need a minute under TCG


def test_node_and_nginx_come_back_after_reboot(own_kube: KubeNode, own_namespace: str) -> None:
    """nginx serves before the reboot; after it, the guest runs a new kernel boot that the
    node reports, the same Deployment's pods run containers the new boot started, and they
    serve on the ClusterIP and on the host's NodePort forward. The node is the test's
    own, restored Ready from the run's snapshot (docs/kubesolo.md "Shared node")."""
    own_kube.apply("nginx", own_namespace)
    own_kube.apply("nginx-nodeport", own_namespace, NODE_PORT=NODE_PORT)
    own_kube.wait_rollout(own_namespace, "nginx")
    assert own_kube.http_from_host(NODE_PORT)[0] == 200
    guest_boot = own_kube.machine.succeed(boot_id_command()).strip()
    before = container_starts(own_kube.deployment_pods(own_namespace, "nginx"))

    own_kube.reboot()

    new_boot = own_kube.machine.succeed(boot_id_command()).strip()
    assert new_boot != guest_boot
    assert node_boot_id(own_kube.node()) == new_boot
    assert own_kube.wait_restarted(own_namespace, "nginx", before)
    status, body = own_kube.http_from_host(NODE_PORT)
    assert status == 200 and NGINX_PAGE in body
    service = own_kube.core.read_namespaced_service(
        "nginx", own_namespace, _request_timeout=REQUEST_TIMEOUT
    )
    phase, output = own_kube.run_pod(
        own_namespace,
        "http-probe",
        "client-after-reboot",
        ACCESS="any",
        URL=f"http://{service.spec.cluster_ip}/",
        SETTLE=0,
        ATTEMPTS=ATTEMPTS,
    )
    assert phase == "Succeeded" and parse_http_status(output) == 200, output
