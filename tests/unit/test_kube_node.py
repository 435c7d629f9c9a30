"""KubeNode against a recording machine and a fake API server: which calls it makes,
when its waits stop."""

from __future__ import annotations

import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kube_fakes import SAMPLE_VALUES, FakeMachine, kubesolo_kubeconfig, node, pod
from kubernetes import client as k8s

from harness.k8s.errors import KubeBlocked, KubeWaitTimeout
from harness.k8s.host_http import http_get
from harness.k8s.node import KubeNode
from harness.k8s.probes import parse_http_status
from harness.k8s.settings import KubeSettings
from harness.k8s.waits import Budget


class TestNodeWithAFakeMachine:
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

    def test_the_previous_boots_kubeconfig_is_never_read(self, tmp_path: Path) -> None:
        """After a reboot the file is still there, with the CA KubeSolo may just have
        replaced: it counts only once this boot's KubeSolo has rewritten it."""
        machine = FakeMachine(tmp_path)
        machine.kubeconfigs = [kubesolo_kubeconfig()]
        machine.stamps = "1764148000\n1764149000\n"  # written before this boot began
        node_ = KubeNode(machine, KubeSettings())
        assert node_._kubeconfig() is None
        assert machine.kubeconfigs  # not even read
        machine.stamps = "1764149100\n1764149000\n"  # rewritten by this boot
        assert node_._kubeconfig() is not None
        assert node_.boot_time == datetime.fromtimestamp(1764149000, UTC)  # events from here

    def test_a_node_that_is_up_reads_the_kubeconfig_its_bring_up_saw(self, tmp_path: Path):
        """docs/kubesolo.md "Shared node": after a restore the clock step moves the boot
        time past the file's mtime, and KubeSolo, still running, never rewrites it."""
        machine = FakeMachine(tmp_path)
        machine.kubeconfigs = [kubesolo_kubeconfig()]
        machine.stamps = "1764149100\n1764152000\n"  # boot time stepped forward by restore
        node_ = KubeNode(machine, KubeSettings())
        assert node_._kubeconfig() is None
        assert node_._kubeconfig(any_boot=True) is not None

    def test_a_failure_on_the_console_ends_a_wait_at_once(self, tmp_path: Path) -> None:
        """KubeSolo exiting as PID 1 panics the kernel: no budget is spent on a dead node."""
        panic = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"
        machine = FakeMachine(tmp_path, console=f"starting kubesolo...\n{panic}\n")
        node_ = KubeNode(machine, KubeSettings(timeout=600))
        with pytest.raises(KubeBlocked, match="kernel panic on the console"):
            node_._connect(Budget(600))
        assert machine.commands == []  # not even the kubeconfig was looked for

    def test_host_ports_are_forwarded_once(self, tmp_path: Path) -> None:
        node_ = KubeNode(FakeMachine(tmp_path), KubeSettings())
        assert node_.host_port(6443) == node_.host_port(6443) == 46443

    def test_manifest_values_carry_the_chosen_images(self, tmp_path: Path) -> None:
        settings = KubeSettings(nginx_image="n:1", busybox_image="b:1")
        values = KubeNode(FakeMachine(tmp_path), settings).values(NAME="x")
        assert values == {"NGINX_IMAGE": "n:1", "BUSYBOX_IMAGE": "b:1", "NAME": "x"}


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
                default = (200, {"items": []}) if path.endswith("/events") else (201, body)
                status, reply = fake.routes.get((self.command, path), default)
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
    assert (phase, parse_http_status(output)) == ("Succeeded", 200)
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


def test_pod_wait_stops_at_once_on_repeated_sandbox_failures(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    """A pod whose sandbox fails again and again (e.g. the runtime cannot pivot_root)
    never starts: the wait says so instead of running to its budget."""
    pending = k8s.ApiClient().sanitize_for_serialization(pod(waiting="ContainerCreating"))
    pending["metadata"]["uid"] = "uid-web"
    event = {
        "metadata": {"name": "web.1", "namespace": "t-1"},
        "involvedObject": {"kind": "Pod", "name": "web", "uid": "uid-web"},
        "reason": "FailedCreatePodSandBox",
        "message": "failed to create containerd task: pivot_root: invalid argument",
        "count": 4,
        "type": "Warning",
        "lastTimestamp": "2026-11-26T10:05:00Z",
    }
    fake_api.routes[("GET", "/api/v1/namespaces/t-1/pods/web")] = (200, pending)
    fake_api.routes[("GET", "/api/v1/namespaces/t-1/events")] = (200, {"items": [event]})
    kube = node_on(fake_api, tmp_path)
    kube.settings = KubeSettings(timeout=600)
    with pytest.raises(KubeBlocked, match=r"^pod t-1/web: FailedCreatePodSandBox x4: .*pivot_root"):
        kube.wait_pod("t-1", "web")
    assert [r[1] for r in fake_api.requests].count("/api/v1/namespaces/t-1/pods/web") == 1


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
    assert http_get(fake_api.url + "/") == (200, "Welcome to nginx!")


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


class Sequenced(KubeNode):
    """A KubeNode whose phases only record that they ran, in order (and what images
    the node was thought to hold while the rollouts ran)."""

    def __init__(self, machine: FakeMachine) -> None:
        super().__init__(machine, KubeSettings(timeout=60))  # type: ignore[arg-type]
        self.phases: list[str] = []
        self.boot_id = "boot-0"
        self.images_during_rollouts: list[frozenset[str]] = []
        self.pods: list[Any] = []

    def _connect(self, budget: Budget) -> None:
        self.phases.append("api")

    def _kubelet_healthy(self) -> bool:
        self.phases.append("kubelet /healthz")
        return True

    def import_images(self) -> list[str]:
        self.phases.append("import images")
        self.present_images = frozenset({"docker.io/library/nginx:stable"})
        self.timer.mark("images_imported")
        return []

    def _fresh_ready_node(self, old_boot_id: str | None) -> Any:
        self.phases.append("node Ready")
        return node("True", self.boot_id)

    def _any_running_pod(self) -> Any:
        self.phases.append("first pod")
        return pod("Running")

    def wait_rollout(self, namespace: str, name: str, timeout: float | None = None) -> Any:
        self.phases.append(f"rollout {name}")
        self.images_during_rollouts.append(self.present_images)
        return True

    def wait_restarted(
        self, namespace: str, name: str, before: Any, timeout: float | None = None
    ) -> list[Any]:
        self.phases.append(f"restarted {name}")
        return []

    def node(self) -> Any:
        return node("True", self.boot_id)

    def deployment_pods(self, namespace: str, name: str) -> list[Any]:
        return []

    def _all_pods(self) -> list[Any]:
        return self.pods


def test_images_are_imported_after_every_boot_once_the_system_rollouts_are_done(
    tmp_path: Path,
) -> None:
    """KubeSolo wipes side-loaded images at every start (docs/kubesolo.md "Images"): the
    bring-up and every reboot import them again, once CoreDNS and local-path are rolled
    out (and, after a reboot, restarted): an import while KubeSolo deploys them takes the
    CPUs they need under TCG. The images an earlier boot listed do not count meanwhile."""
    machine = FakeMachine(tmp_path)
    kube = Sequenced(machine)
    machine.start()
    kube.come_up()
    first = kube.phases
    kube.phases = []
    kube.reboot()
    second = kube.phases
    kube.phases = []
    kube.reboot()
    assert machine.power == ["start", "wait_for_boot", *["reboot", "wait_for_boot"] * 2]
    assert first == [
        "api",
        "kubelet /healthz",
        "node Ready",
        "first pod",
        "rollout coredns",
        "rollout local-path-provisioner",
        "import images",
    ]
    after_reboot = [
        "api",
        "kubelet /healthz",
        "node Ready",
        "rollout coredns",
        "restarted coredns",
        "rollout local-path-provisioner",
        "restarted local-path-provisioner",
        "import images",
    ]
    assert second == kube.phases == after_reboot
    assert kube.images_during_rollouts == [frozenset()] * 6  # 2 rollouts x 3 boots
    assert kube.present_images == {"docker.io/library/nginx:stable"}


def test_the_timer_records_the_phases_in_the_order_they_happen(tmp_path: Path) -> None:
    """k8s-timings.json (README "What to expect"): the import is the last phase."""
    machine = FakeMachine(tmp_path)
    kube = Sequenced(machine)
    kube.come_up()
    kube.reboot()
    runs = json.loads(kube.timer.path.read_text())["runs"]
    rollouts = ["coredns_rollout", "local-path-provisioner_rollout"]
    assert [r["run"] for r in runs] == ["boot", "reboot-1"]
    assert list(runs[0]["phases"]) == [
        "boot",
        "api",
        "kubelet_healthz",
        "node_ready",
        "first_pod_running",
        *rollouts,
        "images_imported",
    ]
    assert list(runs[1]["phases"]) == [
        "boot",
        "api",
        "kubelet_healthz",
        "node_ready",
        *rollouts,
        "images_imported",
    ]


def test_a_reboot_keeps_the_restart_counts_it_began_with(tmp_path: Path) -> None:
    """blockers.START_REPEATS: a start failure repeats only from this boot's second try."""
    kube = Sequenced(FakeMachine(tmp_path))
    kube.come_up()
    assert kube.restarts_before == {}
    crashed = pod(waiting="CrashLoopBackOff")
    crashed.metadata.uid = "uid-web"
    crashed.status.container_statuses[0].restart_count = 4
    kube.pods = [crashed]
    kube.reboot()
    assert kube.restarts_before == {("uid-web", "nginx"): 4}


COREDNS = "docker.io/coredns/coredns:1.14.4"


def coredns_backing_off() -> Any:
    p = pod(waiting="ImagePullBackOff")
    p.metadata.namespace = "kube-system"
    p.status.container_statuses[0].image = COREDNS
    return p


class TestBlockedPulls:
    """Before the import (the system rollouts) the node may have an image no listing of this
    boot has shown yet, from KubeSolo's own import: it is looked for before a pull blocks."""

    def test_an_image_the_node_has_is_no_blocker(self, fake_api: FakeApi, tmp_path: Path) -> None:
        kube = node_on(fake_api, tmp_path)
        kube.machine.images = f"{COREDNS}\ndocker.io/portainer/pause:latest\n"
        kube._raise_if_blocked("kube-system", [coredns_backing_off()])
        assert COREDNS in kube.present_images
        listed = [c for c in kube.machine.commands if c.endswith("images ls -q")]
        assert len(listed) == 1
        kube._raise_if_blocked("kube-system", [coredns_backing_off()])
        assert [c for c in kube.machine.commands if c.endswith("images ls -q")] == listed

    def test_an_image_the_node_lacks_blocks_after_one_look(
        self, fake_api: FakeApi, tmp_path: Path
    ) -> None:
        kube = node_on(fake_api, tmp_path)
        with pytest.raises(KubeBlocked, match=r"coredns.*every KubeSolo build embeds it"):
            kube._raise_if_blocked("kube-system", [coredns_backing_off()])
        assert sum(c.endswith("images ls -q") for c in kube.machine.commands) == 1

    def test_a_known_image_needs_no_look(self, fake_api: FakeApi, tmp_path: Path) -> None:
        kube = node_on(fake_api, tmp_path)
        kube.present_images = frozenset({COREDNS})
        kube._raise_if_blocked("kube-system", [coredns_backing_off()])
        assert kube.machine.commands == []

    def test_a_pod_without_a_node_is_blocked_by_the_hosts_clock(
        self, fake_api: FakeApi, tmp_path: Path
    ) -> None:
        """KubeSolo's webhook never placed it (blockers.WEBHOOK_TIMEOUT)."""
        stuck = pod(waiting=None)
        stuck.spec.node_name = None
        stuck.status.container_statuses = None
        stuck.metadata.creation_timestamp = datetime.now(UTC) - timedelta(minutes=5)
        kube = node_on(fake_api, tmp_path)
        with pytest.raises(KubeBlocked, match=r"^pod t-1/web: Pending with no node 300s"):
            kube._raise_if_blocked("t-1", [stuck])


def test_after_a_restore_ready_needs_a_lease_renewed_since(fake_api: FakeApi, tmp_path: Path):
    """docs/kubesolo.md "Shared node": a restored node's stored Ready is stale until the
    kubelet renews its Lease in kube-node-lease after the clock jump."""
    ready = {"type": "Ready", "status": "True"}
    node_doc = {"metadata": {"name": "kubesolo-abc"}, "status": {"conditions": [ready]}}
    fake_api.routes[("GET", "/api/v1/nodes")] = (200, {"items": [node_doc]})
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/kubesolo-abc"
    restored = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)

    def renewed(at: str) -> None:
        spec = {"holderIdentity": "kubesolo-abc", "renewTime": at}
        fake_api.routes[("GET", lease)] = (
            200,
            {"metadata": {"name": "kubesolo-abc"}, "spec": spec},
        )

    kube = node_on(fake_api, tmp_path)
    renewed("2026-11-27T03:12:00.000000Z")  # the snapshot's
    assert kube._ready_since(restored) is None
    renewed("2026-11-27T04:00:09.250000Z")
    assert kube._ready_since(restored).metadata.name == "kubesolo-abc"
    fake_api.requests.clear()
    assert kube._ready_since(None) is not None  # not restored: no lease asked for
    assert [r[1] for r in fake_api.requests] == ["/api/v1/nodes"]


RESTART_LINE = (
    "[kubesolo-init] [WARN] KubeSolo exited (exit status 1 after 40s, fast failure 1 of 5):"
    " restarting it in 2s\n"
)


def test_images_are_imported_again_after_init_restarts_kubesolo(
    fake_api: FakeApi, tmp_path: Path
) -> None:
    """docs/boot-flow.md "Supervision", docs/kubesolo.md "Images": a start of KubeSolo
    wipes side-loaded images, so a pull back-off after a restart that came after this
    boot's import imports them again instead of blocking; with no restart since, the
    missing image blocks."""
    images = tmp_path / "images"
    images.mkdir()
    (images / "nginx.tar").write_bytes(b"")
    listed = "docker.io/library/nginx:stable\ndocker.io/library/busybox:stable\n"
    machine = FakeMachine(tmp_path, images=listed)
    kube = KubeNode(machine, KubeSettings(timeout=5, images_dir=images))
    kube.api = k8s.ApiClient(k8s.Configuration(host=fake_api.url))
    kube.timer.begin("boot")
    kube.import_images()
    backing_off = pod(waiting="ImagePullBackOff")
    backing_off.status.container_statuses[0].image = "docker.io/library/redis:7"
    imports = lambda: sum("images import" in c for c in machine.commands)  # noqa: E731
    assert imports() == 1
    with pytest.raises(KubeBlocked, match="ImagePullBackOff"):
        kube._raise_if_blocked("t-1", [backing_off])
    assert imports() == 1
    machine.console += RESTART_LINE
    with pytest.raises(KubeBlocked, match="ImagePullBackOff"):  # the archives hold no redis
        kube._raise_if_blocked("t-1", [backing_off])
    assert imports() == 2
