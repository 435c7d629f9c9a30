"""Unit tests of harness.kube and harness.kube_plugin: everything that needs no KubeSolo.

The k8s suites cannot run here (no KubeSolo binary, no images), so what they rely on is
proved here: kubeconfig rewriting, readiness predicates on real `kubernetes` model objects,
manifest loading, guest command lines, the failure dump, timings, waits and the skip.
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import socket
import subprocess
import textwrap
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.k8s import node as kube
from harness.k8s.node import (
    KubeBlocked,
    KubeconfigError,
    KubeNode,
    KubeSettings,
    KubeWaitTimeout,
    ManifestError,
)
from harness.pytest import k8s as kube_plugin

pytest_plugins = ["pytester"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubesolo_kubeconfig(server: str = "https://127.0.0.1:6443", extra: str = "") -> str:
    """Shaped like the file KubeSolo writes (pkg/kubernetes/apiserver/kubeconfig.go)."""
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - name: kubesolo
          cluster:
            server: {server}
            certificate-authority-data: {b64("CA")}
            {extra}
        users:
        - name: kubernetes-admin
          user:
            client-certificate-data: {b64("CERT")}
            client-key-data: {b64("KEY")}
        - name: admin-token
          user:
            token: admin-token
        contexts:
        - name: admin-token@kubesolo
          context: {{cluster: kubesolo, user: admin-token}}
        - name: kubernetes-admin@kubesolo
          context: {{cluster: kubesolo, user: kubernetes-admin}}
        current-context: admin-token@kubesolo
        """
    )


# --- kubeconfig ------------------------------------------------------------------------------
class TestKubeconfig:
    def test_server_points_at_forwarded_port_and_tls_data_is_kept(self) -> None:
        config = kube.rewrite_kubeconfig(kubesolo_kubeconfig(), 41234)
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == "https://127.0.0.1:41234"
        assert cluster["certificate-authority-data"] == b64("CA")
        assert "tls-server-name" not in cluster
        assert config["users"][0]["user"]["client-certificate-data"] == b64("CERT")
        assert config["users"][0]["user"]["client-key-data"] == b64("KEY")

    def test_node_ip_server_keeps_verifying_against_its_name(self) -> None:
        config = kube.rewrite_kubeconfig(kubesolo_kubeconfig("https://10.0.2.15:6443"), 5)
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == "https://127.0.0.1:5"
        assert cluster["tls-server-name"] == "10.0.2.15"

    def test_insecure_skip_verify_is_dropped(self) -> None:
        text = kubesolo_kubeconfig(extra="insecure-skip-tls-verify: true")
        cluster = kube.rewrite_kubeconfig(text, 5)["clusters"][0]["cluster"]
        assert "insecure-skip-tls-verify" not in cluster

    def test_certificate_context_wins_over_token_context(self) -> None:
        config = kube.rewrite_kubeconfig(kubesolo_kubeconfig(), 5)
        assert config["current-context"] == kube.ADMIN_CONTEXT

    def test_current_context_is_the_fallback(self) -> None:
        config = {"contexts": [{"name": "other"}], "current-context": "other"}
        assert kube.select_context(config) == "other"

    def test_no_context_is_an_error(self) -> None:
        with pytest.raises(KubeconfigError):
            kube.select_context({"contexts": []})

    @pytest.mark.parametrize("text", ["", "not: [a, kubeconfig", "clusters: []", "- x"])
    def test_unusable_text_is_one_clear_error(self, text: str) -> None:
        with pytest.raises((KubeconfigError, yaml.YAMLError)):
            kube.rewrite_kubeconfig(text, 5)

    def test_cluster_without_server_is_an_error(self) -> None:
        with pytest.raises(KubeconfigError, match="no server"):
            kube.rewrite_kubeconfig("clusters: [{name: a, cluster: {}}]", 5)

    def test_api_client_ignores_the_hosts_proxy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The server is a 127.0.0.1 forward: a proxy from the environment cannot reach it."""
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(var, "http://proxy.invalid:3128")
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        api = kube.api_client_from_kubeconfig(kube.rewrite_kubeconfig(kubesolo_kubeconfig(), 5))
        assert not api.configuration.proxy
        assert not isinstance(api.rest_client.pool_manager, urllib3.ProxyManager)

    def test_api_client_verifies_tls_against_the_original_name(self) -> None:
        config = kube.rewrite_kubeconfig(kubesolo_kubeconfig("https://10.0.2.15:6443"), 41234)
        api = kube.api_client_from_kubeconfig(config)
        assert api.configuration.host == "https://127.0.0.1:41234"
        assert api.configuration.verify_ssl is True
        assert api.configuration.tls_server_name == "10.0.2.15"
        assert Path(api.configuration.ssl_ca_cert).read_text() == "CA"
        assert Path(api.configuration.cert_file).read_text() == "CERT"


# --- readiness predicates --------------------------------------------------------------------
def node(ready: str | None, boot_id: str | None = "boot-1") -> Any:
    conditions = [k8s.V1NodeCondition(type="MemoryPressure", status="False")]
    if ready is not None:
        conditions.append(k8s.V1NodeCondition(type="Ready", status=ready, reason="KubeletReady"))
    info = None
    if boot_id is not None:
        info = k8s.V1NodeSystemInfo(
            architecture="amd64",
            boot_id=boot_id,
            container_runtime_version="containerd://2",
            kernel_version="6.1",
            kube_proxy_version="",
            kubelet_version="v1.34",
            machine_id="m",
            operating_system="linux",
            os_image="KubeSolo OS",
            system_uuid="u",
        )
    return k8s.V1Node(
        metadata=k8s.V1ObjectMeta(name="kubesolo-abc123"),
        status=k8s.V1NodeStatus(conditions=conditions, node_info=info),
    )


class TestNodePredicates:
    @pytest.mark.parametrize(
        ("ready", "expected"), [("True", True), ("False", False), ("Unknown", False), (None, False)]
    )
    def test_ready_condition(self, ready: str | None, expected: bool) -> None:
        assert kube.node_ready(node(ready)) is expected

    def test_node_without_status_is_not_ready(self) -> None:
        assert not kube.node_ready(k8s.V1Node(metadata=k8s.V1ObjectMeta(name="n")))

    def test_boot_id(self) -> None:
        assert kube.node_boot_id(node("True", "abc")) == "abc"
        assert kube.node_boot_id(node("True", None)) is None

    @pytest.mark.parametrize(
        ("ready", "boot_id", "old", "expected"),
        [
            ("True", "boot-2", "boot-1", True),
            ("True", "boot-1", "boot-1", False),  # stale Ready from before the reboot
            ("False", "boot-2", "boot-1", False),
            ("True", None, "boot-1", False),
            ("True", "boot-1", None, True),  # first boot: any Ready counts
        ],
    )
    def test_ready_after_reboot(
        self, ready: str, boot_id: str | None, old: str | None, expected: bool
    ) -> None:
        assert kube.node_ready_after_reboot(node(ready, boot_id), old) is expected


def deployment(
    wanted: int | None = 1, generation: int = 2, **status: int | None
) -> k8s.V1Deployment:
    defaults = {
        "observed_generation": 2,
        "replicas": 1,
        "updated_replicas": 1,
        "available_replicas": 1,
    }
    merged: dict[str, Any] = {**defaults, **status}
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name="coredns", namespace="kube-system", generation=generation),
        spec=k8s.V1DeploymentSpec(
            replicas=wanted,
            selector=k8s.V1LabelSelector(match_labels={"k8s-app": "coredns"}),
            template=k8s.V1PodTemplateSpec(),
        ),
        status=k8s.V1DeploymentStatus(**merged),
    )


class TestRollout:
    @pytest.mark.parametrize(
        ("dep", "expected"),
        [
            (deployment(), True),
            (deployment(wanted=None), True),  # spec default is one replica
            (deployment(observed_generation=1), False),  # controller has not seen the spec
            (deployment(updated_replicas=0), False),
            (deployment(wanted=2, replicas=2, available_replicas=1), False),
            (deployment(wanted=2, replicas=2, updated_replicas=2, available_replicas=2), True),
            (deployment(replicas=2), False),  # an old pod still terminating
            (deployment(available_replicas=0), False),
            (deployment(available_replicas=None), False),
        ],
    )
    def test_rollout_complete(self, dep: k8s.V1Deployment, expected: bool) -> None:
        assert kube.rollout_complete(dep) is expected

    def test_no_status_yet(self) -> None:
        dep = deployment()
        dep.status = None
        assert not kube.rollout_complete(dep)


def pod(phase: str | None = "Pending", waiting: str | None = None) -> Any:
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting, message="pull failed")
        if waiting
        else None,
        running=None if waiting else k8s.V1ContainerStateRunning(),
    )
    statuses = [
        k8s.V1ContainerStatus(
            name="nginx",
            image="docker.io/library/nginx:stable",
            image_id="",
            ready=False,
            restart_count=0,
            state=state,
        )
    ]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="web", namespace="t-1"),
        spec=k8s.V1PodSpec(containers=[], node_name="kubesolo-abc123"),
        status=k8s.V1PodStatus(phase=phase, container_statuses=statuses),
    )


def system_pod(uid: str, started: datetime | None, ready: bool = True) -> Any:
    """A CoreDNS-like pod whose one container runs since `started` (None: not running)."""
    state = k8s.V1ContainerState(
        running=k8s.V1ContainerStateRunning(started_at=started) if started else None,
        waiting=None if started else k8s.V1ContainerStateWaiting(reason="ContainerCreating"),
    )
    status = k8s.V1ContainerStatus(
        name="coredns", image="coredns", image_id="", ready=ready, restart_count=0, state=state
    )
    condition = k8s.V1PodCondition(type="Ready", status="True" if ready else "False")
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="coredns-1", namespace="kube-system", uid=uid),
        status=k8s.V1PodStatus(
            phase="Running", conditions=[condition], container_statuses=[status]
        ),
    )


class TestRestartedAfterReboot:
    BEFORE_REBOOT = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    AFTER_REBOOT = datetime(2026, 11, 25, 10, 5, tzinfo=UTC)

    def before(self) -> kube.ContainerStarts:
        return kube.container_starts([system_pod("u1", self.BEFORE_REBOOT)])

    def test_the_picture_records_each_containers_start(self) -> None:
        assert self.before() == {"u1": {"coredns": self.BEFORE_REBOOT}}
        assert kube.container_starts([system_pod("u2", None)]) == {"u2": {"coredns": None}}

    @pytest.mark.parametrize(
        ("pods", "expected"),
        [
            ([system_pod("u1", BEFORE_REBOOT)], False),  # stale status from before the reboot
            ([system_pod("u1", None, ready=False)], False),  # not running yet
            ([system_pod("u1", AFTER_REBOOT, ready=False)], False),  # started, not Ready
            ([system_pod("u1", AFTER_REBOOT)], True),  # restarted by the new boot
            ([system_pod("u9", AFTER_REBOOT)], True),  # a replacement pod
            ([system_pod("u1", AFTER_REBOOT), system_pod("u2", None)], False),
            ([], False),  # no pod at all is no rollout
        ],
    )
    def test_only_pods_restarted_by_the_new_boot_count(
        self, pods: list[Any], expected: bool
    ) -> None:
        assert kube.restarted_and_ready(pods, self.before()) is expected


class TestPodAndFriends:
    @pytest.mark.parametrize(
        ("phase", "running", "succeeded", "finished"),
        [
            ("Pending", False, False, False),
            ("Running", True, False, False),
            ("Succeeded", False, True, True),
            ("Failed", False, False, True),
            (None, False, False, False),
        ],
    )
    def test_phases(self, phase: str, running: bool, succeeded: bool, finished: bool) -> None:
        p = pod(phase)
        assert (kube.pod_running(p), kube.pod_succeeded(p), kube.pod_finished(p)) == (
            running,
            succeeded,
            finished,
        )

    def test_pod_ready_condition(self) -> None:
        p = pod("Running")
        p.status.conditions = [k8s.V1PodCondition(type="Ready", status="True")]
        assert kube.pod_ready(p)
        assert not kube.pod_ready(pod("Running"))

    @pytest.mark.parametrize("reason", sorted(kube.BLOCKING_WAIT_REASONS))
    def test_blocking_reasons_name_pod_container_and_image(self, reason: str) -> None:
        message = kube.pod_blocker(pod(waiting=reason))
        assert message is not None
        assert "t-1/web" in message and "nginx:stable" in message and reason in message

    def test_missing_image_points_at_the_option(self) -> None:
        message = kube.pod_blocker(pod(waiting="ImagePullBackOff"))
        assert message is not None and "--kubesolo-images" in message

    @pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing", None])
    def test_ordinary_waits_are_not_blockers(self, reason: str | None) -> None:
        assert kube.pod_blocker(pod(waiting=reason)) is None

    def test_pod_without_statuses_is_not_blocked(self) -> None:
        assert kube.pod_blocker(k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p"))) is None

    @pytest.mark.parametrize(("phase", "expected"), [("Bound", True), ("Pending", False)])
    def test_pvc_bound(self, phase: str, expected: bool) -> None:
        pvc = k8s.V1PersistentVolumeClaim(status=k8s.V1PersistentVolumeClaimStatus(phase=phase))
        assert kube.pvc_bound(pvc) is expected
        assert not kube.pvc_bound(k8s.V1PersistentVolumeClaim())

    def test_job_complete_and_failed(self) -> None:
        def job(conditions: list[tuple[str, str]], succeeded: int | None = None) -> k8s.V1Job:
            items = [k8s.V1JobCondition(type=t, status=s) for t, s in conditions]
            return k8s.V1Job(status=k8s.V1JobStatus(conditions=items, succeeded=succeeded))

        assert kube.job_complete(job([("Complete", "True")]))
        assert kube.job_complete(job([], succeeded=1))
        assert not kube.job_complete(job([]))
        assert not kube.job_complete(k8s.V1Job())
        assert kube.job_failed(job([("Failed", "True")]))
        assert not kube.job_failed(job([("Complete", "True")]))

    def test_default_storage_class(self) -> None:
        def sc(annotations: dict[str, str] | None) -> k8s.V1StorageClass:
            meta = k8s.V1ObjectMeta(name="local-path", annotations=annotations)
            return k8s.V1StorageClass(metadata=meta, provisioner="rancher.io/local-path")

        assert kube.storage_class_is_default(sc({kube.DEFAULT_CLASS_ANNOTATION: "true"}))
        assert not kube.storage_class_is_default(sc({kube.DEFAULT_CLASS_ANNOTATION: "false"}))
        assert not kube.storage_class_is_default(sc(None))

    def test_pv_path_for_hostpath_and_local_volumes(self) -> None:
        path = f"{kube.LOCAL_PATH_ROOT}/pvc-1_t-1_data"
        host = k8s.V1PersistentVolume(
            spec=k8s.V1PersistentVolumeSpec(host_path=k8s.V1HostPathVolumeSource(path=path))
        )
        local = k8s.V1PersistentVolume(
            spec=k8s.V1PersistentVolumeSpec(local=k8s.V1LocalVolumeSource(path=path))
        )
        assert kube.pv_host_path(host) == kube.pv_host_path(local) == path
        assert kube.pv_host_path(k8s.V1PersistentVolume(spec=k8s.V1PersistentVolumeSpec())) is None


# --- probe outputs ---------------------------------------------------------------------------
WGET_LOG = """\
Connecting to 10.43.200.7 (10.43.200.7:80)
  HTTP/1.1 200 OK
  Server: nginx/1.26.3
  Content-Type: text/html
writing to stdout
<!DOCTYPE html>
<title>Welcome to nginx!</title>
"""

NSLOOKUP_NEW = """\
search t-1.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.43.0.10
Server:\t\t10.43.0.10
Address:\t10.43.0.10:53


Name:\tkubernetes.default.svc.cluster.local
Address: 10.43.0.1

"""

NSLOOKUP_OLD = """\
Server:    10.43.0.10
Address 1: 10.43.0.10 kube-dns.kube-system.svc.cluster.local

Name:      kubernetes.default.svc.cluster.local
Address 1: 10.43.0.1 kubernetes.default.svc.cluster.local
"""


class TestProbeOutputs:
    def test_http_status_from_wget_log(self) -> None:
        assert kube.parse_http_status(WGET_LOG) == 200
        assert kube.parse_http_status("wget: server returned error: HTTP/1.1 404 Not Found") == 404
        assert kube.parse_http_status("wget: download timed out") is None

    def test_last_status_wins_after_a_redirect(self) -> None:
        assert kube.parse_http_status("HTTP/1.1 301 Moved\nHTTP/1.1 200 OK\n") == 200

    @pytest.mark.parametrize("output", [NSLOOKUP_NEW, NSLOOKUP_OLD])
    def test_nslookup_answer_not_server(self, output: str) -> None:
        name = "kubernetes.default.svc.cluster.local"
        assert kube.resolved_addresses(output, name) == {"10.43.0.1"}

    def test_nslookup_failure_resolves_nothing(self) -> None:
        output = "Server: 10.43.0.10\n** server can't find kubernetes.default: NXDOMAIN\n"
        assert kube.resolved_addresses(output, "kubernetes.default") == set()


# --- manifests -------------------------------------------------------------------------------
MANIFESTS = sorted(p.stem for p in kube.MANIFEST_DIR.glob("*.yaml"))
SAMPLE_VALUES = {
    "NGINX_IMAGE": "sentinel/nginx:1",
    "BUSYBOX_IMAGE": "sentinel/busybox:1",
    "NAME": "probe-1",
    "ACCESS": "allowed",
    "URL": "http://10.43.0.5/",
    "SETTLE": 0,
    "ATTEMPTS": 3,
    "LOOKUP": "kubernetes.default.svc.cluster.local",
    "EXPECT_IP": "10.43.0.1",
    "PAYLOAD": "0123abcd",
    "NODE_PORT": 30080,
}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    spec = spec.get("template", {}).get("spec", spec)
    return list(spec.get("containers", []))


class TestManifests:
    def test_substitution_leaves_shell_variables_alone(self) -> None:
        text = 'i=$((i + 1)); echo "$i ${i} ${lower}" ${NAME}'
        assert kube.substitute(text, {"NAME": "x"}) == 'i=$((i + 1)); echo "$i ${i} ${lower}" x'

    def test_missing_values_are_all_named(self) -> None:
        with pytest.raises(ManifestError, match="A_B, NAME"):
            kube.substitute("${NAME} ${A_B} ${NAME}", {})

    def test_unknown_manifest(self, tmp_path: Path) -> None:
        with pytest.raises(ManifestError, match="no manifest"):
            kube.load_manifest("nope", {}, directory=tmp_path)

    def test_empty_documents_are_dropped(self, tmp_path: Path) -> None:
        (tmp_path / "m.yaml").write_text("---\nkind: A\n---\n---\nkind: B\n")
        assert [d["kind"] for d in kube.load_manifest("m", directory=tmp_path)] == ["A", "B"]

    def test_the_suites_manifests_exist(self) -> None:
        expected = {
            "nginx",
            "nginx-nodeport",
            "http-probe",
            "dns-probe",
            "pvc-writer",
            "pvc-reader",
            "netpol",
        }
        assert expected <= set(MANIFESTS)

    @pytest.mark.parametrize("name", MANIFESTS)
    def test_manifest_loads_into_named_objects(self, name: str) -> None:
        docs = kube.load_manifest(name, SAMPLE_VALUES)
        assert docs
        for doc in docs:
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
            assert "namespace" not in doc["metadata"], "tests choose the namespace"

    @pytest.mark.parametrize("name", MANIFESTS)
    def test_images_are_the_chosen_ones_and_never_pulled_needlessly(self, name: str) -> None:
        for doc in kube.load_manifest(name, SAMPLE_VALUES):
            for container in containers(doc):
                assert container["image"].startswith("sentinel/")
                assert container["imagePullPolicy"] == "IfNotPresent"

    @pytest.mark.parametrize("name", ["http-probe", "dns-probe"])
    def test_probe_scripts_are_valid_sh(self, name: str) -> None:
        (doc,) = kube.load_manifest(name, SAMPLE_VALUES)
        (container,) = containers(doc)
        script = container["args"][0]
        subprocess.run(["sh", "-n", "-c", script], check=True)

    def test_node_port_is_an_integer(self) -> None:
        (service,) = kube.load_manifest("nginx-nodeport", SAMPLE_VALUES)
        assert service["spec"]["ports"][0]["nodePort"] == 30080

    def test_policies_select_nginx_and_the_labelled_client(self) -> None:
        nginx_labels = kube.load_manifest("nginx", SAMPLE_VALUES)[0]["spec"]["template"]
        probe = kube.load_manifest("http-probe", SAMPLE_VALUES)[0]
        deny, allow = kube.load_manifest("netpol", SAMPLE_VALUES)
        assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
        assert allow["spec"]["podSelector"]["matchLabels"].items() <= (
            nginx_labels["metadata"]["labels"].items()
        )
        source = allow["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert source == {"access": "allowed"} == {"access": probe["metadata"]["labels"]["access"]}

    def test_pvc_uses_the_default_class(self) -> None:
        pvc, job = kube.load_manifest("pvc-writer", SAMPLE_VALUES)
        assert "storageClassName" not in pvc["spec"]
        assert "0123abcd" in " ".join(containers(job)[0]["command"])


# --- guest command lines ---------------------------------------------------------------------
class TestGuestCommands:
    def test_ctr_talks_to_kubesolos_namespace(self) -> None:
        assert kube.ctr_command("/s.sock", "images", "ls") == "ctr -a /s.sock -n k8s.io images ls"

    def test_image_archives(self, tmp_path: Path) -> None:
        for name in ("nginx.tar", "busybox.tar.gz", "x.tgz", "notes.txt", "a.oci"):
            (tmp_path / name).write_bytes(b"")
        (tmp_path / "dir.tar").mkdir()
        assert kube.image_archives(tmp_path) == ["busybox.tar.gz", "nginx.tar", "x.tgz"]

    def test_import_commands_read_from_the_share(self) -> None:
        assert kube.import_commands("/s", ["a b.tar"]) == [
            "ctr -a /s -n k8s.io images import '/mnt/kimages/a b.tar'"
        ]

    @pytest.mark.parametrize("name", ["nginx.tar.gz", "nginx.tgz"])
    def test_gzipped_archives_are_decompressed_for_ctr(self, name: str) -> None:
        """ctr's importer reads a plain tar stream (no decompression in containerd 1.x)."""
        assert kube.import_command("/s", name) == (
            f"gunzip -c /mnt/kimages/{name} | ctr -a /s -n k8s.io images import -"
        )

    def test_gunzip_pipe_feeds_ctr_a_plain_tar(self, tmp_path: Path) -> None:
        (tmp_path / "layout").mkdir()
        (tmp_path / "layout" / "manifest.json").write_text("[]")
        archive = tmp_path / "x.tar.gz"
        subprocess.run(
            ["tar", "-czf", str(archive), "-C", str(tmp_path / "layout"), "."], check=True
        )
        command = kube.import_command("/s", "x.tar.gz").replace("/mnt/kimages", str(tmp_path))
        command = command.split(" | ")[0] + " | tar -t >/dev/null"
        subprocess.run(["sh", "-c", command], check=True)

    def test_share_mount_is_read_only_9p_and_idempotent(self) -> None:
        command = kube.mount_share_command()
        assert "mount -t 9p -o trans=virtio,ro,version=9p2000.L kimages /mnt/kimages" in command
        assert "grep -qs ' /mnt/kimages ' /proc/mounts ||" in command

    def test_guest_commands_never_exit_the_test_shell(self) -> None:
        commands = [
            kube.mount_share_command(),
            kube.containerd_socket_command(),
            kube.kubelet_healthz_command(),
        ]
        assert not any("exit" in c for c in commands)

    def test_socket_command_prints_the_first_existing_socket(self, tmp_path: Path) -> None:
        real = tmp_path / "b.sock"
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(real))
            candidates = [str(tmp_path / "a.sock"), str(real), str(tmp_path / "c.sock")]
            command = kube.containerd_socket_command(candidates)
            result = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        assert result.stdout == f"{real}\n"

    @pytest.mark.parametrize(
        ("ref", "normal"),
        [
            ("nginx:stable", "docker.io/library/nginx:stable"),
            ("busybox", "docker.io/library/busybox:latest"),
            ("docker.io/library/busybox:stable", "docker.io/library/busybox:stable"),
            (
                "rancher/local-path-provisioner:v0.0.34",
                "docker.io/rancher/local-path-provisioner:v0.0.34",
            ),
            ("ghcr.io/a/b", "ghcr.io/a/b:latest"),
            ("localhost:5000/x:1", "localhost:5000/x:1"),
            ("localhost/x", "localhost/x:latest"),
            ("nginx@sha256:abc", "docker.io/library/nginx@sha256:abc"),
        ],
    )
    def test_normalize_image_ref(self, ref: str, normal: str) -> None:
        assert kube.normalize_image_ref(ref) == normal

    def test_helper_alias_only_when_needed_and_possible(self) -> None:
        stable = "docker.io/library/busybox:stable"
        assert kube.image_tags([stable], [], "busybox:stable") == {
            kube.LOCAL_PATH_HELPER_IMAGE: stable
        }
        assert kube.image_tags([stable, kube.LOCAL_PATH_HELPER_IMAGE], [], "busybox:stable") == {}
        assert kube.image_tags([], [], "busybox:stable") == {}

    def test_oci_short_names_get_the_name_the_kubelet_asks_for(self) -> None:
        """ctr keeps an OCI archive's `nginx:stable` as is; the kubelet looks up the
        normalized name."""
        present = ["nginx:stable", "busybox:stable", "docker.io/coredns/coredns:1.14.1"]
        wanted = ["docker.io/library/nginx:stable", "docker.io/library/busybox:stable"]
        assert kube.image_tags(present, wanted, wanted[1]) == {
            "docker.io/library/nginx:stable": "nginx:stable",
            "docker.io/library/busybox:stable": "busybox:stable",
            kube.LOCAL_PATH_HELPER_IMAGE: "busybox:stable",
        }

    def test_missing_images_compare_normalized_names(self) -> None:
        wanted = ["nginx:stable", "docker.io/library/busybox:stable"]
        assert kube.missing_images(["docker.io/library/nginx:stable"], wanted) == [wanted[1]]
        assert kube.missing_images(["import-2026-01-01:stable"], wanted) == wanted
        assert kube.missing_images(["nginx:stable", "busybox:stable"], wanted) == []


# --- failure dump ----------------------------------------------------------------------------
def event(minute: int | None, reason: str, count: int = 1) -> k8s.CoreV1Event:
    stamp = None if minute is None else datetime(2026, 1, 1, 12, minute, tzinfo=UTC)
    return k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(namespace="kube-system", creation_timestamp=None),
        involved_object=k8s.V1ObjectReference(kind="Pod", name="coredns-1"),
        type="Warning",
        reason=reason,
        message=f"{reason} happened\n",
        count=count,
        last_timestamp=stamp,
    )


class TestDump:
    def test_nodes_show_each_condition(self) -> None:
        lines = kube.format_nodes([node("False", "b-1")])
        assert lines[0] == "node kubesolo-abc123 (boot b-1)"
        assert "  Ready=False KubeletReady:" in lines

    def test_no_nodes(self) -> None:
        assert kube.format_nodes([]) == ["(no nodes registered)"]

    def test_pods_show_container_states(self) -> None:
        done = pod("Failed")
        done.status.container_statuses[0].state = k8s.V1ContainerState(
            terminated=k8s.V1ContainerStateTerminated(exit_code=1, reason="Error")
        )
        lines = kube.format_pods([pod("Pending", "ErrImageNeverPull"), pod("Running"), done])
        text = "\n".join(lines)
        assert "pod t-1/web Pending node=kubesolo-abc123" in text
        assert "waiting ErrImageNeverPull: pull failed" in text
        assert "restarts=0 running" in text
        assert "terminated Error exit=1" in text

    def test_events_oldest_first_latest_kept(self) -> None:
        events = [event(5, "Late"), event(None, "Undated"), event(1, "Early", count=3)]
        lines = kube.format_events(events, limit=2)
        assert len(lines) == 2
        assert "Early x3 kube-system/Pod/coredns-1: Early happened" in lines[0]
        assert "Late" in lines[1]
        assert kube.format_events([]) == ["(no events)"]

    def test_console_lines_of_the_current_kubesolo_run(self) -> None:
        text = (
            "[kubesolo-init] [OK] Stage 90-kubesolo.sh complete\r\n"
            "\x1b[32mINF\x1b[0m starting kubesolo...\n"
            "old boot line\n"
            "[kubesolo-init] rebooted\n"
            "\x1b[32mINF\x1b[0m starting kubesolo...\n"
            "\x1b[31mERR\x1b[0m shutdown requested before kubelet was ready\n"
        )
        assert kube.kubesolo_console_lines(text) == [
            "INF starting kubesolo...",
            "ERR shutdown requested before kubelet was ready",
        ]
        assert kube.kubesolo_console_lines("a\nb\nc", limit=2) == ["b", "c"]
        assert kube.kubesolo_console_lines("") == ["(console is empty)"]

    def test_dump_has_one_heading_per_section(self) -> None:
        text = kube.failure_dump({"node conditions": ["a"], "events": ["b", "c"]})
        assert text == "==== node conditions ====\na\n==== events ====\nb\nc\n"

    def test_dump_before_the_api_is_known_still_shows_the_console(self, tmp_path: Path) -> None:
        machine = FakeMachine(tmp_path, console="starting kubesolo...\nkine is ready...\n")
        text = KubeNode(machine, KubeSettings()).dump()
        assert "==== node conditions ====\n(no API client" in text
        assert "==== KubeSolo console ====\nstarting kubesolo...\nkine is ready..." in text

    def test_a_broken_section_does_not_hide_the_others(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path, console="starting kubesolo..."), KubeSettings())
        node_.api = k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:9"))
        text = node_.dump()
        assert text.count("(unavailable:") == 3
        assert "starting kubesolo..." in text


# --- timings, waits --------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestPhaseTimer:
    def test_phases_are_written_as_they_happen(self, tmp_path: Path) -> None:
        clock = FakeClock()
        path = tmp_path / kube.TIMINGS_FILE
        timer = kube.PhaseTimer(path, meta={"kubesolo_version": "v1.2.3"}, clock=clock)
        timer.begin("boot")
        clock.now += 12.5
        assert timer.mark("boot") == 12.5
        clock.now += 30
        timer.mark("api")
        first = json.loads(path.read_text())
        assert first == {
            "meta": {"kubesolo_version": "v1.2.3"},
            "runs": [{"run": "boot", "phases": {"boot": 12.5, "api": 42.5}}],
        }
        timer.begin("reboot-1")
        clock.now += 7
        timer.mark("boot")
        runs = json.loads(path.read_text())["runs"]
        assert runs[1] == {"run": "reboot-1", "phases": {"boot": 7.0}}

    def test_summary_lines_per_run(self) -> None:
        report = {
            "meta": {"kubesolo_version": "v1.2.3"},
            "runs": [
                {"run": "boot", "phases": {"boot": 20.04, "api": 95.5}},
                {"run": "reboot-1", "phases": {}},
            ],
        }
        assert kube.format_timings(report) == [
            "KubeSolo v1.2.3, seconds from power-on or reboot:",
            "  boot: boot 20.0, api 95.5",
            "  reboot-1: (no phase reached)",
        ]

    def test_timings_are_kept_beside_the_artefacts(self, tmp_path: Path) -> None:
        timer = kube.PhaseTimer(tmp_path / "vm" / kube.TIMINGS_FILE)
        timer.path.parent.mkdir()
        timer.begin("boot")
        artifacts = tmp_path / "artifacts"
        config = SimpleNamespace(getoption=lambda name, default=None: str(artifacts))
        kube_plugin.keep_timings(config, timer)  # type: ignore[arg-type]
        copied = json.loads((artifacts / kube.TIMINGS_FILE).read_text())
        assert copied == {"meta": {}, "runs": [{"run": "boot", "phases": {}}]}

    def test_mark_before_begin(self, tmp_path: Path) -> None:
        with pytest.raises(RuntimeError):
            kube.PhaseTimer(tmp_path / "t.json").mark("x")


def no_sleep(_: float) -> None:
    return None


class TestWaits:
    def test_returns_the_first_real_result(self) -> None:
        results = iter([None, None, "node"])
        assert kube.wait_for("node", lambda: next(results), timeout=5, sleep=no_sleep) == "node"

    def test_transient_errors_are_retried(self) -> None:
        attempts = iter([ApiException(status=503), ConnectionRefusedError(), "up"])

        def probe() -> str:
            item = next(attempts)
            if isinstance(item, BaseException):
                raise item
            return str(item)

        assert kube.wait_for("API", probe, timeout=5, sleep=no_sleep) == "up"

    @pytest.mark.parametrize("error", [KubeBlocked("image missing"), ValueError("bug")])
    def test_blockers_and_bugs_stop_at_once(self, error: Exception) -> None:
        calls = []

        def probe() -> None:
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            kube.wait_for("x", probe, timeout=5, sleep=no_sleep)
        assert len(calls) == 1

    def test_timeout_names_the_wait_and_the_last_error(self) -> None:
        def probe() -> None:
            raise ApiException(status=503, reason="Service Unavailable")

        with pytest.raises(
            KubeWaitTimeout,
            match=r"node Ready: not reached within 0s "
            r"\(last error: API 503 Service Unavailable\)",
        ):
            kube.wait_for("node Ready", probe, timeout=0.05, sleep=no_sleep)

    def test_timeout_without_error(self) -> None:
        with pytest.raises(KubeWaitTimeout, match=r"^rollout: not reached within 0s$"):
            kube.wait_for("rollout", lambda: None, timeout=0.05, sleep=no_sleep)

    def test_budget_is_shared_and_never_zero(self) -> None:
        clock = FakeClock()
        budget = kube.Budget(100, clock=clock)
        clock.now += 40
        assert budget.remaining() == 60
        clock.now += 500
        assert budget.remaining() == 1.0


# --- node orchestration with a fake machine --------------------------------------------------
class FakeMachine:
    """Records guest commands; answers the few the image import asks."""

    def __init__(self, run_dir: Path, console: str = "", images: str = "") -> None:
        self.run_dir = run_dir
        self.console = console
        self.images = images
        self.commands: list[str] = []
        self.kubeconfigs: list[str] = []  # what successive machine.kubeconfig() calls return

    def succeed(self, command: str, timeout: float = 0) -> str:
        self.commands.append(command)
        if command.startswith("for s in"):
            return f"{kube.CONTAINERD_SOCKETS[0]}\n"
        if command.endswith("images ls -q"):
            return self.images
        return ""

    def console_text(self, since: object = None) -> str:
        return self.console

    def forward_port(self, guest_port: int) -> int:
        return 40000 + guest_port

    def execute(self, command: str, timeout: float = 0) -> tuple[int, str]:
        self.commands.append(command)
        return (0 if self.kubeconfigs else 1), ""

    def kubeconfig(self) -> str:
        return self.kubeconfigs.pop(0)


class TestImageImport:
    def test_mount_find_socket_import_each_then_alias_busybox(self, tmp_path: Path) -> None:
        images = tmp_path / "images"
        images.mkdir()
        for name in ("nginx.tar", "busybox.tar"):
            (images / name).write_bytes(b"")
        listing = "docker.io/library/nginx:stable\ndocker.io/library/busybox:stable\n"
        machine = FakeMachine(tmp_path, images=listing)
        node_ = KubeNode(machine, KubeSettings(images_dir=images))
        node_.timer.begin("boot")
        assert node_.import_images() == ["busybox.tar", "nginx.tar"]
        sock = kube.CONTAINERD_SOCKETS[0]
        assert machine.commands == [
            kube.mount_share_command(),
            kube.containerd_socket_command(),
            f"ctr -a {sock} -n k8s.io images import /mnt/kimages/busybox.tar",
            f"ctr -a {sock} -n k8s.io images import /mnt/kimages/nginx.tar",
            f"ctr -a {sock} -n k8s.io images ls -q",
            f"ctr -a {sock} -n k8s.io images tag docker.io/library/busybox:stable "
            f"{kube.LOCAL_PATH_HELPER_IMAGE}",
        ]
        assert "images_imported" in json.loads(node_.timer.path.read_text())["runs"][0]["phases"]

    def test_images_the_suites_need_must_be_there_after_import(self, tmp_path: Path) -> None:
        (tmp_path / "nginx.tar").write_bytes(b"")
        machine = FakeMachine(tmp_path, images="import-2026-01-01:stable\n")
        node_ = KubeNode(machine, KubeSettings(images_dir=tmp_path))
        with pytest.raises(KubeBlocked, match=r"nginx:stable, .*busybox:stable not among"):
            node_.import_images()

    def test_oci_short_names_are_tagged_before_the_check(self, tmp_path: Path) -> None:
        (tmp_path / "images.tar").write_bytes(b"")
        machine = FakeMachine(tmp_path, images="nginx:stable\nbusybox:stable\n")
        node_ = KubeNode(machine, KubeSettings(images_dir=tmp_path))
        node_.timer.begin("boot")
        node_.import_images()
        tags = [c.split(" images tag ")[1] for c in machine.commands if " images tag " in c]
        assert tags == [
            "nginx:stable docker.io/library/nginx:stable",
            "busybox:stable docker.io/library/busybox:stable",
            f"busybox:stable {kube.LOCAL_PATH_HELPER_IMAGE}",
        ]

    def test_no_images_dir_imports_nothing(self, tmp_path: Path) -> None:
        machine = FakeMachine(tmp_path)
        assert KubeNode(machine, KubeSettings()).import_images() == []
        assert machine.commands == []

    def test_empty_images_dir_is_a_clear_error(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path), KubeSettings(images_dir=tmp_path))
        with pytest.raises(KubeBlocked, match="no image archives"):
            node_.import_images()

    def test_kubeconfig_caught_mid_rewrite_is_read_again(self, tmp_path: Path) -> None:
        """KubeSolo truncates and rewrites the file on every start, also after a reboot."""
        machine = FakeMachine(tmp_path)
        half_written = "clusters:\n- name: kubesolo\n  cluster: {ser"
        machine.kubeconfigs = ["", half_written, kubesolo_kubeconfig()]
        node_ = KubeNode(machine, KubeSettings())
        assert node_._kubeconfig() is None
        assert node_._kubeconfig() is None
        config = node_._kubeconfig()
        assert config is not None
        assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:46443"
        assert node_._kubeconfig() is None  # no file: not yet written

    def test_a_failure_on_the_console_ends_a_wait_at_once(self, tmp_path: Path) -> None:
        """KubeSolo exiting as PID 1 panics the kernel: no budget is spent on a dead node."""
        panic = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"
        machine = FakeMachine(tmp_path, console=f"starting kubesolo...\n{panic}\n")
        node_ = KubeNode(machine, KubeSettings(timeout=600))
        with pytest.raises(KubeBlocked, match="kernel panic on the console"):
            node_._connect(kube.Budget(600))
        assert machine.commands == []  # not even the kubeconfig was looked for

    def test_host_ports_are_forwarded_once(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path), KubeSettings())
        assert node_.host_port(6443) == node_.host_port(6443) == 46443

    def test_manifest_values_carry_the_chosen_images(self, tmp_path: Path) -> None:
        settings = KubeSettings(nginx_image="n:1", busybox_image="b:1")
        values = KubeNode(FakeMachine(tmp_path), settings).values(NAME="x")
        assert values == {"NGINX_IMAGE": "n:1", "BUSYBOX_IMAGE": "b:1", "NAME": "x"}


# --- plugin ----------------------------------------------------------------------------------
class TestPluginPieces:
    def test_skip_reason_is_exact(self) -> None:
        with pytest.raises(pytest.skip.Exception) as info:
            kube_plugin.require_real_kubesolo({"kubesolo": "standin"})
        assert info.value.msg == "needs a real KubeSolo binary: pass --kubesolo-bin (see README)"

    def test_real_binary_does_not_skip(self) -> None:
        kube_plugin.require_real_kubesolo({"kubesolo": "real", "kubesolo_version": "v1.1.0"})

    @pytest.mark.parametrize(
        "test_name",
        ["test_x", "test_system_deployment_is_rolled_out[kube-system-coredns]", "T" * 200],
    )
    def test_namespace_names_are_rfc1123_labels(self, test_name: str) -> None:
        name = kube_plugin.namespace_name(test_name)
        assert len(name) <= 63 and name.startswith("t-")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert name != kube_plugin.namespace_name(test_name)

    def test_machine_has_room_for_kubesolo_and_shares_the_images(self, tmp_path: Path) -> None:
        config = kube.machine_config(KubeSettings(images_dir=tmp_path))
        assert config["memory_mb"] >= 2048 and config["cpus"] == 2
        assert config["shares"] == {kube.IMAGES_SHARE_TAG: tmp_path}
        assert kube.machine_config(KubeSettings())["shares"] == {}

    def test_settings_from_options(self, tmp_path: Path) -> None:
        options = {
            "kubesolo_images": str(tmp_path),
            "k8s_timeout": 120.0,
            "k8s_nginx_image": "n:1",
            "k8s_busybox_image": "b:1",
            "expect_netpol_enforced": True,
            "boot_timeout": 300,
            "vm_memory": 4096,
            "vm_cpus": 1,
        }
        config = SimpleNamespace(getoption=lambda name, default=None: options.get(name, default))
        settings = kube_plugin.settings_from_config(config)  # type: ignore[arg-type]
        assert settings == KubeSettings(
            timeout=120.0,
            boot_timeout=300.0,
            images_dir=tmp_path,
            nginx_image="n:1",
            busybox_image="b:1",
            expect_netpol_enforced=True,
            memory_mb=4096,  # --vm-memory raises the node's memory
            cpus=2,  # but never below what KubeSolo needs
        )

    def test_missing_images_dir_is_a_usage_error(self, tmp_path: Path) -> None:
        options = {"kubesolo_images": str(tmp_path / "nope")}
        config = SimpleNamespace(getoption=lambda name, default=None: options.get(name, default))
        with pytest.raises(pytest.UsageError, match="not a directory"):
            kube_plugin.settings_from_config(config)  # type: ignore[arg-type]


FAKE_CONFTEST = """
import pytest
from types import SimpleNamespace

BOOTS = []

def pytest_configure(config):
    config.addinivalue_line("markers", "k8s: needs KubeSolo")
    config.addinivalue_line("markers", "slow: slow")

@pytest.fixture(scope="session")
def kubesolo_image():
    return SimpleNamespace(path=None, manifest={"kubesolo": "%s", "kubesolo_version": "v1"})

@pytest.fixture(scope="session")
def session_machine_factory():
    def factory(**config):
        BOOTS.append(config)
        raise RuntimeError(f"would boot a VM with {sorted(config)}")
    return factory
"""


@pytest.mark.parametrize("flavour", ["standin", "real"])
def test_k8s_suites_skip_without_kubesolo_and_boot_with_it(
    pytester: pytest.Pytester, flavour: str
) -> None:
    """The whole tests/k8s tree against a fake image: one skip reason, no VM, for the stand-in."""
    pytester.makeconftest(FAKE_CONFTEST % flavour)
    suites = Path(__file__).resolve().parent.parent / "k8s"
    for source in suites.glob("test_*.py"):
        # a fresh module name: the real suites may already be imported in this session
        pytester.makepyfile(**{f"test_copy_{source.stem[5:]}": source.read_text()})
    # Only this plugin, under its module name: the entry points (if installed) stay out.
    isolated = ("-p", "no:kubesolo", "-p", "no:kubesolo-k8s", "-p", "harness.pytest.k8s")
    result = pytester.runpytest_inprocess(*isolated, "-rs")
    outcomes = result.parseoutcomes()
    if flavour == "standin":
        assert outcomes.get("skipped", 0) >= 8 and set(outcomes) <= {"skipped", "warnings"}
        skipped = [ln for ln in result.outlines if ln.startswith("SKIPPED")]
        assert skipped
        assert all(ln.endswith(kube_plugin.SKIP_REASON) for ln in skipped), skipped
        assert "would boot a VM" not in result.stdout.str()
    else:
        assert outcomes.get("errors", 0) >= 8
        result.stdout.fnmatch_lines(["*would boot a VM with*cpus*memory_mb*shares*"])


# --- client calls against a fake API server ----------------------------------------------------
class FakeApi:
    """A tiny HTTP stand-in for the API server: records requests, answers from a route table."""

    def __init__(self, routes: dict[tuple[str, str], tuple[int, Any]]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = self.path.split("?")[0]
                fake.requests.append((self.command, path, body))
                status, reply = fake.routes.get((self.command, path), (201, body))
                data = reply if isinstance(reply, str) else json.dumps(reply)
                self.send_response(status)
                kind = "text/plain" if isinstance(reply, str) else "application/json"
                self.send_header("Content-Type", kind)
                self.end_headers()
                self.wfile.write(data.encode())

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_api() -> Any:
    api = FakeApi({})
    yield api
    api.close()


def node_on(fake: FakeApi, tmp_path: Path) -> KubeNode:
    node_ = KubeNode(FakeMachine(tmp_path), KubeSettings(timeout=5))
    node_.api = k8s.ApiClient(k8s.Configuration(host=fake.url))
    return node_


EXPECTED_ROUTES = {
    "nginx": [
        "/apis/apps/v1/namespaces/t-1/deployments",
        "/api/v1/namespaces/t-1/services",
    ],
    "nginx-nodeport": ["/api/v1/namespaces/t-1/services"],
    "http-probe": ["/api/v1/namespaces/t-1/pods"],
    "dns-probe": ["/api/v1/namespaces/t-1/pods"],
    "pvc-reader": ["/api/v1/namespaces/t-1/pods"],
    "pvc-writer": [
        "/api/v1/namespaces/t-1/persistentvolumeclaims",
        "/apis/batch/v1/namespaces/t-1/jobs",
    ],
    "netpol": ["/apis/networking.k8s.io/v1/namespaces/t-1/networkpolicies"] * 2,
}


@pytest.mark.parametrize("name", sorted(EXPECTED_ROUTES))
def test_apply_creates_each_object_in_the_tests_namespace(
    fake_api: FakeApi, tmp_path: Path, name: str
) -> None:
    values = {k: v for k, v in SAMPLE_VALUES.items() if "IMAGE" not in k}
    node_on(fake_api, tmp_path).apply(name, "t-1", **values)
    assert [(m, p) for m, p, _ in fake_api.requests] == [("POST", p) for p in EXPECTED_ROUTES[name]]


def test_run_pod_waits_for_completion_and_returns_the_log(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    pod_path = "/api/v1/namespaces/t-1/pods/probe"
    done = {"metadata": {"name": "probe", "namespace": "t-1"}, "status": {"phase": "Succeeded"}}
    fake_api.routes[("GET", pod_path)] = (200, done)
    fake_api.routes[("GET", pod_path + "/log")] = (200, "HTTP/1.1 200 OK\n")
    phase, output = node_on(fake_api, tmp_path).run_pod(
        "t-1", "http-probe", "probe", ACCESS="a", URL="http://x/", SETTLE=0, ATTEMPTS=1
    )
    assert (phase, kube.parse_http_status(output)) == ("Succeeded", 200)
    posted = fake_api.requests[0][2]
    assert posted["spec"]["containers"][0]["image"] == KubeSettings().busybox_image


def test_rollout_wait_stops_at_once_on_a_missing_image(fake_api: FakeApi, tmp_path: Path) -> None:
    dep = {
        "metadata": {"name": "nginx", "namespace": "t-1", "generation": 1},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "nginx"}}, "template": {}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1},
    }
    blocked = k8s.ApiClient().sanitize_for_serialization(pod(waiting="ErrImageNeverPull"))
    fake_api.routes[("GET", "/apis/apps/v1/namespaces/t-1/deployments/nginx")] = (200, dep)
    fake_api.routes[("GET", "/api/v1/namespaces/t-1/pods")] = (200, {"items": [blocked]})
    with pytest.raises(KubeBlocked, match=r"ErrImageNeverPull.*--kubesolo-images"):
        node_on(fake_api, tmp_path).wait_rollout("t-1", "nginx")


def test_new_namespace_waits_for_its_default_service_account(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    """Pods are rejected until the controller manager has added `default` (ServiceAccount
    admission): the namespace is handed out only once it is there."""
    account = "/api/v1/namespaces/t-1/serviceaccounts/default"
    fake_api.routes[("GET", account)] = (200, {"metadata": {"name": "default"}})
    node_on(fake_api, tmp_path).create_namespace("t-1")
    assert [(m, p) for m, p, _ in fake_api.requests] == [
        ("POST", "/api/v1/namespaces"),
        ("GET", account),
    ]
    assert fake_api.requests[0][2]["metadata"]["name"] == "t-1"


def test_namespace_without_service_account_is_a_timeout(fake_api: FakeApi, tmp_path: Path) -> None:
    account = "/api/v1/namespaces/t-1/serviceaccounts/default"
    fake_api.routes[("GET", account)] = (404, {"kind": "Status", "code": 404})
    node_ = node_on(fake_api, tmp_path)
    node_.settings = KubeSettings(timeout=0.3)
    with pytest.raises(KubeWaitTimeout, match="ServiceAccount t-1/default"):
        node_.create_namespace("t-1")


def test_host_get_ignores_the_hosts_proxy(
    fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NodePort forwards listen on 127.0.0.1, where no proxy can reach."""
    for var in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(var, "http://proxy.invalid:3128")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    fake_api.routes[("GET", "/")] = (200, "Welcome to nginx!")
    assert kube.http_get(fake_api.url + "/") == (200, "Welcome to nginx!")


class TestTimeLimit:
    def test_limit_covers_the_budgets_and_never_lowers_the_users(self) -> None:
        assert kube_plugin.k8s_time_limit(240, 900, 1800) == 2 * 240 + 4 * 900
        assert kube_plugin.k8s_time_limit(240, 60, 1800) == 1800
        assert kube_plugin.k8s_time_limit(240, 900, 99999) == 99999

    @pytest.mark.parametrize("configured", [None, 0.0])
    def test_no_limit_stays_no_limit(self, configured: float | None) -> None:
        assert kube_plugin.k8s_time_limit(240, 900, configured) == 0

    def test_k8s_tests_get_the_limit_others_keep_theirs(self, pytester: pytest.Pytester) -> None:
        pytester.makeconftest(
            'def pytest_configure(config):\n    config.addinivalue_line("markers", "k8s: x")\n'
        )
        pytester.makepyfile(
            textwrap.dedent(
                """
                import pytest

                def limit(request):
                    marker = request.node.get_closest_marker("timeout")
                    return marker.args[0] if marker else None

                @pytest.mark.k8s
                def test_k8s(request):
                    assert limit(request) == 2 * 900 + 4 * 120

                @pytest.mark.k8s
                @pytest.mark.timeout(7)
                def test_own(request):
                    assert limit(request) == 7

                def test_other(request):
                    assert limit(request) is None
                """
            )
        )
        isolated = ("-p", "no:kubesolo", "-p", "no:kubesolo-k8s", "-p", "harness.pytest.k8s")
        result = pytester.runpytest_inprocess(
            *isolated, "--timeout", "1800", "--k8s-timeout", "120"
        )
        result.assert_outcomes(passed=3)


def test_deployment_pods_are_listed_by_the_deployments_selector(fake_api: FakeApi, tmp_path):
    """After a reboot the harness compares the pods a system Deployment selects."""
    deployment = "/apis/apps/v1/namespaces/kube-system/deployments/coredns"
    fake_api.routes[("GET", deployment)] = (
        200,
        {
            "metadata": {"name": "coredns"},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "coredns"}},
                "template": {"spec": {"containers": []}},
            },
        },
    )
    pods = {"items": [{"metadata": {"name": "coredns-1", "uid": "u1"}}]}
    fake_api.routes[("GET", "/api/v1/namespaces/kube-system/pods")] = (200, pods)
    found = node_on(fake_api, tmp_path).deployment_pods("kube-system", "coredns")
    assert [p.metadata.uid for p in found] == ["u1"]
    assert [r[:2] for r in fake_api.requests] == [
        ("GET", deployment),
        ("GET", "/api/v1/namespaces/kube-system/pods"),
    ]
