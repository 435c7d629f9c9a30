"""What the suites do on a KubeSolo node: apply a fixture's manifests, run pods
and Jobs to completion, wait for claims, and reach a service from the host. A
mixin of KubeNode, so that the suites read as plain steps (node.run_pod(...))."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kubernetes import client as k8s
from kubernetes import utils as k8s_utils
from kubernetes.client.exceptions import ApiException

from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.errors import KubeBlocked
from harness.k8s.host_http import http_get
from harness.k8s.manifests import load_manifest
from harness.k8s.predicates import job_complete, job_failed, pod_finished, pvc_bound
from harness.k8s.settings import KubeSettings

T = TypeVar("T")


class NodeWorkloads:
    """The workload steps; KubeNode gives them its clients, waits and blockers."""

    settings: KubeSettings
    api: Any

    if TYPE_CHECKING:  # KubeNode's

        @property
        def core(self) -> Any: ...
        @property
        def batch(self) -> Any: ...
        def host_port(self, guest_port: int) -> int: ...
        def _wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T: ...
        def _pods(self, namespace: str, labels: Mapping[str, str]) -> list[Any]: ...
        def _raise_if_blocked(self, namespace: str, pods: Sequence[Any]) -> None: ...

    def values(self, **extra: object) -> dict[str, object]:
        """Manifest values: the image names the user chose plus per-call ones."""
        base: dict[str, object] = {
            "NGINX_IMAGE": self.settings.nginx_image,
            "BUSYBOX_IMAGE": self.settings.busybox_image,
        }
        return {**base, **extra}

    def apply(self, manifest: str, namespace: str, **values: object) -> list[Any]:
        """Create every object of a fixture manifest in `namespace`."""
        created = []
        for doc in load_manifest(manifest, self.values(**values)):
            created.extend(
                k8s_utils.create_from_dict(
                    self.api, doc, namespace=namespace, _request_timeout=REQUEST_TIMEOUT
                )
            )
        return created

    def create_namespace(self, name: str) -> None:
        """Create a namespace and wait for its `default` ServiceAccount: until the controller
        manager adds it, the ServiceAccount admission plugin rejects every pod there."""
        namespace = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))
        self.core.create_namespace(namespace, _request_timeout=REQUEST_TIMEOUT)
        self._wait(
            f"ServiceAccount {name}/default",
            lambda: self.core.read_namespaced_service_account(
                "default", name, _request_timeout=REQUEST_TIMEOUT
            ),
            self.settings.timeout,
        )

    def wait_pod(
        self, namespace: str, name: str, done: Callable[[Any], bool] = pod_finished
    ) -> Any:
        def probe() -> Any:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            if done(pod):
                return pod
            self._raise_if_blocked(namespace, [pod])
            return None

        return self._wait(f"pod {namespace}/{name}", probe, self.settings.timeout)

    def run_pod(
        self, namespace: str, manifest: str, name: str, **values: object
    ) -> tuple[str, str]:
        """Run a one-shot pod to completion: (phase, log)."""
        self.apply(manifest, namespace, NAME=name, **values)
        pod = self.wait_pod(namespace, name)
        return pod.status.phase, self.pod_log(namespace, name)

    def pod_log(self, namespace: str, name: str) -> str:
        return str(
            self.core.read_namespaced_pod_log(name, namespace, _request_timeout=REQUEST_TIMEOUT)
        )

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete and wait until the API no longer has it."""
        self.core.delete_namespaced_pod(
            name, namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT
        )

        def gone() -> bool | None:
            try:
                self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            except ApiException as error:
                if error.status == 404:
                    return True
                raise
            return None

        self._wait(f"deletion of pod {namespace}/{name}", gone, self.settings.timeout)

    def wait_job(self, namespace: str, name: str) -> Any:
        def probe() -> Any:
            job = self.batch.read_namespaced_job(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            if job_failed(job):
                raise KubeBlocked(f"job {namespace}/{name} failed")
            if job_complete(job):
                return job
            self._raise_if_blocked(namespace, self._pods(namespace, {"job-name": name}))
            return None

        return self._wait(f"job {namespace}/{name}", probe, self.settings.timeout)

    def wait_pvc_bound(self, namespace: str, name: str) -> Any:
        def probe() -> Any:
            pvc = self.core.read_namespaced_persistent_volume_claim(
                name, namespace, _request_timeout=REQUEST_TIMEOUT
            )
            return pvc if pvc_bound(pvc) else None

        return self._wait(f"PVC {namespace}/{name} Bound", probe, self.settings.timeout)

    def http_from_host(self, guest_port: int, path: str = "/") -> tuple[int, str]:
        """GET through a host forward, retried while kube-proxy programs its rules."""
        url = f"http://127.0.0.1:{self.host_port(guest_port)}{path}"
        return self._wait(f"GET {url}", lambda: http_get(url), self.settings.timeout)
