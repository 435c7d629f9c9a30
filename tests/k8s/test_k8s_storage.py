"""local-path PVCs keep their bytes across pods and reboots.

Proves docs/kubesolo.md "Storage" (StorageClass local-path is the default, provisioner
rancher.io/local-path, WaitForFirstConsumer, Retain, volumes under
<path>/local-path-storage) and docs/boot-flow.md "Stage 20" (the data partition holds
/var/lib/kubesolo).
"""

from __future__ import annotations

import secrets
import shlex

import pytest

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.kubesolo import LOCAL_PATH_PROVISIONER, LOCAL_PATH_ROOT, LOCAL_PATH_STORAGE_CLASS
from harness.k8s.node import KubeNode
from harness.k8s.predicates import pv_host_path, storage_class_is_default

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def test_local_path_is_the_default_storage_class(kube: KubeNode) -> None:
    """The class KubeSolo creates, with the binding and reclaim rules the facts name."""
    storage_class = kube.storage.read_storage_class(
        LOCAL_PATH_STORAGE_CLASS, _request_timeout=REQUEST_TIMEOUT
    )
    assert storage_class_is_default(storage_class), storage_class.metadata.annotations
    assert storage_class.provisioner == LOCAL_PATH_PROVISIONER
    assert storage_class.volume_binding_mode == "WaitForFirstConsumer"
    assert storage_class.reclaim_policy == "Retain"


def read_back(kube: KubeNode, namespace: str, name: str) -> str:
    phase, output = kube.run_pod(namespace, "pvc-reader", name)
    assert phase == "Succeeded", output
    return output


def test_pvc_data_survives_pod_deletion_and_reboot(own_kube: KubeNode, own_namespace: str) -> None:
    """A Job writes, another pod reads the same bytes; the volume sits under
    /var/lib/kubesolo/local-path-storage and still holds them after the VM reboots. The
    node is the test's own (docs/kubesolo.md "Shared node")."""
    payload = secrets.token_hex(16)
    own_kube.apply("pvc-writer", own_namespace, PAYLOAD=payload)
    own_kube.wait_job(own_namespace, "writer")
    pvc = own_kube.wait_pvc_bound(own_namespace, "data")
    assert pvc.spec.storage_class_name == LOCAL_PATH_STORAGE_CLASS

    volume = own_kube.core.read_persistent_volume(
        pvc.spec.volume_name, _request_timeout=REQUEST_TIMEOUT
    )
    path = pv_host_path(volume)
    assert path and path.startswith(f"{LOCAL_PATH_ROOT}/"), path
    on_node = f"cat {shlex.quote(path + '/payload')}"
    assert own_kube.machine.succeed(on_node) == payload

    assert read_back(own_kube, own_namespace, "reader-1") == payload
    own_kube.delete_pod(own_namespace, "reader-1")

    own_kube.reboot()
    assert own_kube.machine.succeed(on_node) == payload
    assert read_back(own_kube, own_namespace, "reader-2") == payload
