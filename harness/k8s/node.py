"""Kubernetes on a KubeSolo node: kubeconfig, readiness predicates, waits, manifests, dumps.

Everything here follows spec/kubesolo-facts.md. The module has three layers:
pure functions (kubeconfig rewriting, predicates over `kubernetes` model objects, manifest
loading, guest command lines, dump formatting) that the unit tests cover; `wait_for`, a
tenacity loop with a budget; and `KubeNode`, which drives one VM through bring-up and reboot.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import shlex
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import urllib3
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import utils as k8s_utils
from kubernetes.client.exceptions import ApiException
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from harness.vm.console import find_failure

log = logging.getLogger(__name__)
T = TypeVar("T")

# --- facts (spec/kubesolo-facts.md) -----------------------------------------------------------
KUBESOLO_PATH = "/var/lib/kubesolo"
ADMIN_KUBECONFIG = f"{KUBESOLO_PATH}/pki/admin/admin.kubeconfig"
ADMIN_CONTEXT = "kubernetes-admin@kubesolo"
API_PORT = 6443
KUBELET_HEALTHZ = "http://127.0.0.1:10248/healthz"
LOCAL_PATH_ROOT = f"{KUBESOLO_PATH}/local-path-storage"
CONTAINERD_SOCKETS = (
    f"{KUBESOLO_PATH}/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
)
CONTAINERD_NAMESPACE = "k8s.io"
SYSTEM_ROLLOUTS = (
    ("kube-system", "coredns"),
    ("local-path-storage", "local-path-provisioner"),
)
LOCAL_PATH_STORAGE_CLASS = "local-path"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
CLUSTER_DNS_IP = "10.43.0.10"
# local-path's helper pod runs plain `busybox` (IfNotPresent): it must exist on the node.
LOCAL_PATH_HELPER_IMAGE = "docker.io/library/busybox:latest"

# --- harness conventions -----------------------------------------------------------------------
MANIFEST_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"
IMAGES_SHARE_TAG = "kimages"
IMAGES_MOUNT_POINT = "/mnt/kimages"
IMAGE_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz")
GZIP_SUFFIXES = (".tar.gz", ".tgz")
TIMINGS_FILE = "k8s-timings.json"
DUMP_FILE = "k8s-dump.txt"
IMAGE_HINT = "preload it: pass --kubesolo-images DIR (see README)"


class KubeError(Exception):
    """Base of this module's errors: one line that says what went wrong."""


class KubeconfigError(KubeError):
    """The admin kubeconfig cannot be used."""


class ManifestError(KubeError):
    """A fixture manifest is missing or needs values nobody gave."""


class KubeWaitTimeout(KubeError):
    """A wait ran out of budget."""


class KubeBlocked(KubeError):
    """Waiting longer cannot help (image missing, job failed): stop at once."""


# --- kubeconfig --------------------------------------------------------------------------------
def rewrite_kubeconfig(text: str, port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Point every cluster at the forwarded port, keeping CA and client certificates.

    Newer KubeSolo builds may write the node IP as server; its certificate is valid for that
    name, so TLS keeps verifying against it through `tls-server-name` (SNI + hostname check).
    """
    config = yaml.safe_load(text)
    if not isinstance(config, dict) or not config.get("clusters"):
        raise KubeconfigError("admin kubeconfig has no clusters: is KubeSolo's API up?")
    for entry in config["clusters"]:
        cluster = entry.get("cluster") or {}
        if "server" not in cluster:
            raise KubeconfigError(f"cluster {entry.get('name')!r} in kubeconfig has no server")
        original = urlsplit(cluster["server"]).hostname
        cluster["server"] = f"https://{host}:{port}"
        cluster.pop("insecure-skip-tls-verify", None)
        if original and original != host:
            cluster.setdefault("tls-server-name", original)
    config["current-context"] = select_context(config)
    return config


def select_context(config: Mapping[str, Any]) -> str:
    """KubeSolo's certificate-based admin context; the token context is a fallback only."""
    names = [c.get("name") for c in config.get("contexts") or []]
    if ADMIN_CONTEXT in names:
        return ADMIN_CONTEXT
    current = config.get("current-context")
    if not current:
        raise KubeconfigError("admin kubeconfig has no usable context")
    return str(current)


def api_client_from_kubeconfig(config: Mapping[str, Any]) -> Any:
    """A `kubernetes.client.ApiClient` for one rewritten kubeconfig (not the global one).

    The server is a 127.0.0.1 forward that no proxy can reach, so HTTPS_PROXY & co. of the
    host are ignored (recent clients route through them unless NO_PROXY names 127.0.0.1).
    """
    configuration = k8s.Configuration()
    configuration.proxy = None  # set explicitly: the environment's proxy is not consulted
    k8s_config.load_kube_config_from_dict(
        dict(config),
        context=config["current-context"],
        client_configuration=configuration,
        persist_config=False,
    )
    return k8s.ApiClient(configuration)


# --- readiness predicates (pure, over kubernetes client model objects) -------------------------
def condition_status(conditions: Iterable[Any] | None, kind: str) -> str | None:
    """Status ("True"/"False"/"Unknown") of the condition of this type, None if absent."""
    for condition in conditions or ():
        if condition.type == kind:
            return str(condition.status)
    return None


def node_ready(node: Any) -> bool:
    return condition_status(node.status and node.status.conditions, "Ready") == "True"


def node_boot_id(node: Any) -> str | None:
    """The kubelet reports the kernel's boot id: it tells a fresh status from a stale one."""
    info = node.status and node.status.node_info
    return info.boot_id if info else None


def node_ready_after_reboot(node: Any, old_boot_id: str | None) -> bool:
    """Ready as reported by the new boot: a node object keeps Ready=True across a reboot."""
    return node_ready(node) and node_boot_id(node) not in (None, old_boot_id)


def rollout_complete(deployment: Any) -> bool:
    """The same rule as `kubectl rollout status`: observed, updated, no old pods, available."""
    status = deployment.status
    if status is None:
        return False
    wanted = 1 if deployment.spec.replicas is None else deployment.spec.replicas
    updated = status.updated_replicas or 0
    return (
        (status.observed_generation or 0) >= (deployment.metadata.generation or 0)
        and updated >= wanted
        and (status.replicas or 0) <= updated
        and (status.available_replicas or 0) >= updated
    )


# pod uid -> container name -> when its running container started (None: not running)
ContainerStarts = dict[str, dict[str, datetime | None]]


def container_starts(pods: Iterable[Any]) -> ContainerStarts:
    """When each pod's containers started: the picture to compare with after a reboot."""
    return {
        pod.metadata.uid: {
            status.name: status.state.running.started_at
            if status.state and status.state.running
            else None
            for status in (pod.status and pod.status.container_statuses) or []
        }
        for pod in pods
    }


def restarted_and_ready(pods: Sequence[Any], before: ContainerStarts) -> bool:
    """Every pod Ready with each container started after the picture `before`: the API
    server keeps a pod's Ready=True from before a reboot until the kubelet syncs it."""
    now = container_starts(pods)
    for pod in pods:
        old = before.get(pod.metadata.uid, {})
        for name, started in now[pod.metadata.uid].items():
            previous = old.get(name)
            if started is None or (previous is not None and started <= previous):
                return False
    return bool(pods) and all(pod_ready(pod) for pod in pods)


def pvc_bound(pvc: Any) -> bool:
    return bool(pvc.status and pvc.status.phase == "Bound")


def pod_phase(pod: Any) -> str | None:
    return pod.status.phase if pod.status else None


def pod_running(pod: Any) -> bool:
    return pod_phase(pod) == "Running"


def pod_succeeded(pod: Any) -> bool:
    return pod_phase(pod) == "Succeeded"


def pod_finished(pod: Any) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def pod_ready(pod: Any) -> bool:
    return condition_status(pod.status and pod.status.conditions, "Ready") == "True"


def job_complete(job: Any) -> bool:
    status = job.status
    return bool(status) and (
        condition_status(status.conditions, "Complete") == "True" or (status.succeeded or 0) > 0
    )


def job_failed(job: Any) -> bool:
    return bool(job.status) and condition_status(job.status.conditions, "Failed") == "True"


# Container waiting reasons that no amount of waiting fixes on an air-gapped node.
BLOCKING_WAIT_REASONS: Mapping[str, str] = {
    "ErrImageNeverPull": f"image not on the node; {IMAGE_HINT}",
    "ImagePullBackOff": f"image cannot be pulled; {IMAGE_HINT}",
    "InvalidImageName": "image name is invalid",
    "CreateContainerConfigError": "container config is invalid",
}


def pod_blocker(pod: Any) -> str | None:
    """Why this pod can never start, or None while it still might."""
    statuses = (pod.status and pod.status.container_statuses) or []
    for status in statuses:
        waiting = status.state and status.state.waiting
        if waiting and waiting.reason in BLOCKING_WAIT_REASONS:
            return (
                f"pod {pod.metadata.namespace}/{pod.metadata.name} container {status.name} "
                f"({status.image}): {waiting.reason}: {BLOCKING_WAIT_REASONS[waiting.reason]}"
            )
    return None


def storage_class_is_default(storage_class: Any) -> bool:
    annotations = storage_class.metadata.annotations or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true"


def pv_host_path(pv: Any) -> str | None:
    """Where a local-path volume lives on the node (hostPath or local volume type)."""
    spec = pv.spec
    source = spec.host_path or spec.local
    return source.path if source else None


# --- outputs of probe pods (pure) --------------------------------------------------------------
HTTP_STATUS = re.compile(r"HTTP/\d(?:\.\d)?\s+(\d{3})")
NSLOOKUP_NAME = re.compile(r"^Name:\s*(\S+)")
NSLOOKUP_ADDRESS = re.compile(r"^Address(?:\s+\d+)?:\s*([0-9a-fA-F:.]+?)(?:#\d+)?(?:\s|$)")


def parse_http_status(output: str) -> int | None:
    """Final status line printed by busybox `wget -S` (headers go to stderr, i.e. the log)."""
    codes = HTTP_STATUS.findall(output)
    return int(codes[-1]) if codes else None


def resolved_addresses(output: str, name: str) -> set[str]:
    """Addresses busybox nslookup gave for `name` (old and new output formats)."""
    found: set[str] = set()
    current = None
    for line in output.splitlines():
        line = line.strip()
        named = NSLOOKUP_NAME.match(line)
        if named:
            current = named.group(1).rstrip(".")
            continue
        address = NSLOOKUP_ADDRESS.match(line)
        if address and current == name.rstrip("."):
            found.add(address.group(1))
        elif not line:
            current = None
    return found


# --- manifests ---------------------------------------------------------------------------------
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def substitute(text: str, values: Mapping[str, object]) -> str:
    """Replace `${UPPER_CASE}` only, so shell scripts inside manifests keep `$i`, `$((...))`."""
    missing = sorted({m for m in VARIABLE.findall(text) if m not in values})
    if missing:
        raise ManifestError(f"manifest needs values for: {', '.join(missing)}")
    return VARIABLE.sub(lambda m: str(values[m.group(1)]), text)


def load_manifest(
    name: str, values: Mapping[str, object] | None = None, directory: Path = MANIFEST_DIR
) -> list[dict[str, Any]]:
    """Documents of fixtures/manifests/<name>.yaml after substitution, empty ones dropped."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise ManifestError(f"no manifest {path}")
    text = substitute(path.read_text(encoding="utf-8"), values or {})
    return [doc for doc in yaml.safe_load_all(text) if doc]


# --- guest command lines (busybox sh; no `exit`, the test shell must survive) ------------------
def kubelet_healthz_command() -> str:
    return f"wget -qO- -T 10 {KUBELET_HEALTHZ}"


def mount_share_command(tag: str = IMAGES_SHARE_TAG, point: str = IMAGES_MOUNT_POINT) -> str:
    quoted = shlex.quote(point)
    return (
        f"mkdir -p {quoted} && {{ grep -qs ' {point} ' /proc/mounts || "
        f"mount -t 9p -o trans=virtio,ro,version=9p2000.L {shlex.quote(tag)} {quoted}; }}"
    )


def containerd_socket_command(candidates: Sequence[str] = CONTAINERD_SOCKETS) -> str:
    """Print the first containerd socket that exists (KubeSolo's own comes first)."""
    words = " ".join(shlex.quote(c) for c in candidates)
    return f'for s in {words}; do if [ -S "$s" ]; then echo "$s"; break; fi; done'


def ctr_command(socket: str, *args: str) -> str:
    return shlex.join(["ctr", "-a", socket, "-n", CONTAINERD_NAMESPACE, *args])


def image_archives(directory: Path) -> list[str]:
    """Names of the image archives (docker-archive or OCI tarballs) to import, sorted."""
    return sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and p.name.endswith(IMAGE_ARCHIVE_SUFFIXES)
    )


def import_command(socket: str, name: str) -> str:
    """ctr's importer reads a plain tar stream only: a gzipped archive goes through gunzip."""
    path = f"{IMAGES_MOUNT_POINT}/{name}"
    if name.endswith(GZIP_SUFFIXES):
        return f"gunzip -c {shlex.quote(path)} | {ctr_command(socket, 'images', 'import', '-')}"
    return ctr_command(socket, "images", "import", path)


def import_commands(socket: str, names: Iterable[str]) -> list[str]:
    return [import_command(socket, name) for name in names]


def normalize_image_ref(ref: str) -> str:
    """Docker's normalisation, as containerd stores refs: nginx:stable -> docker.io/library/..."""
    name, digest = ref.split("@", 1) if "@" in ref else (ref, "")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if digest:
        return f"{domain}/{path}@{digest}"
    return f"{domain}/{path}" if ":" in path.rsplit("/", 1)[-1] else f"{domain}/{path}:latest"


def image_tags(present: Iterable[str], wanted: Iterable[str], busybox_ref: str) -> dict[str, str]:
    """target -> source: the tags that give the kubelet every name it will ask for.

    ctr keeps an OCI archive's ref name as written (`nginx:stable`) while the kubelet asks
    for the normalized one (`docker.io/library/nginx:stable`); local-path's helper pod asks
    for plain `busybox`, i.e. `docker.io/library/busybox:latest`.
    """
    refs = set(present)
    by_normal: dict[str, str] = {}
    for ref in sorted(refs):
        by_normal.setdefault(normalize_image_ref(ref), ref)
    sources = {normalize_image_ref(ref): normalize_image_ref(ref) for ref in wanted}
    sources[LOCAL_PATH_HELPER_IMAGE] = normalize_image_ref(busybox_ref)
    return {
        target: by_normal[source]
        for target, source in sources.items()
        if target not in refs and source in by_normal
    }


def missing_images(present: Iterable[str], wanted: Iterable[str]) -> list[str]:
    """The wanted images no present name (after normalization) provides."""
    normal = {normalize_image_ref(ref) for ref in present}
    return [ref for ref in wanted if normalize_image_ref(ref) not in normal]


# --- failure dump (pure formatting) ------------------------------------------------------------
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KUBESOLO_START = "starting kubesolo"
EPOCH = datetime.min.replace(tzinfo=UTC)


def format_nodes(nodes: Iterable[Any]) -> list[str]:
    lines = []
    for node in nodes:
        lines.append(f"node {node.metadata.name} (boot {node_boot_id(node)})")
        for c in (node.status and node.status.conditions) or []:
            lines.append(f"  {c.type}={c.status} {c.reason or ''}: {c.message or ''}".rstrip())
    return lines or ["(no nodes registered)"]


def _container_state(status: Any) -> str:
    state = status.state
    if state is None:
        return "unknown"
    if state.waiting:
        return f"waiting {state.waiting.reason}: {state.waiting.message or ''}".rstrip(": ")
    if state.terminated:
        return f"terminated {state.terminated.reason} exit={state.terminated.exit_code}"
    return "running" if state.running else "unknown"


def format_pods(pods: Iterable[Any]) -> list[str]:
    lines = []
    for pod in pods:
        meta = pod.metadata
        node = pod.spec.node_name if pod.spec else None
        lines.append(f"pod {meta.namespace}/{meta.name} {pod_phase(pod)} node={node}")
        for s in (pod.status and pod.status.container_statuses) or []:
            lines.append(f"  {s.name} {s.image} restarts={s.restart_count} {_container_state(s)}")
    return lines or ["(no pods)"]


def _event_time(event: Any) -> datetime:
    stamps = (event.last_timestamp, event.event_time, event.first_timestamp)
    return next((s for s in stamps if s is not None), event.metadata.creation_timestamp or EPOCH)


def format_events(events: Iterable[Any], limit: int = 60) -> list[str]:
    """The latest events, oldest first, one line each."""
    ordered = sorted(events, key=_event_time)[-limit:]
    lines = []
    for e in ordered:
        obj = e.involved_object
        where = f"{e.metadata.namespace}/{obj.kind}/{obj.name}"
        count = f" x{e.count}" if e.count and e.count > 1 else ""
        lines.append(
            f"{_event_time(e).isoformat()} {e.type} {e.reason}{count} {where}: "
            f"{(e.message or '').strip()}"
        )
    return lines or ["(no events)"]


def kubesolo_console_lines(text: str, limit: int = 150) -> list[str]:
    """KubeSolo's own log lines of the current boot, colour codes removed."""
    lines = [ANSI.sub("", line).rstrip("\r") for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if KUBESOLO_START in line]
    tail = lines[starts[-1] :] if starts else lines
    return tail[-limit:] or ["(console is empty)"]


def failure_dump(sections: Mapping[str, Sequence[str]]) -> str:
    """Sections as a plain-text report to attach to a failing test."""
    parts = []
    for title, lines in sections.items():
        parts.append(f"==== {title} ====")
        parts.extend(lines)
    return "\n".join(parts) + "\n"


# --- phase timings -----------------------------------------------------------------------------
@dataclass
class PhaseTimer:
    """Seconds from a run's start (boot or reboot) to each phase, rewritten after every mark.

    These are the figures users compare between KubeSolo releases, so a failed run keeps
    whatever phases it reached.
    """

    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    runs: list[dict[str, Any]] = field(default_factory=list)
    _started: float = 0.0

    def begin(self, run: str) -> None:
        self._started = self.clock()
        self.runs.append({"run": run, "phases": {}})
        self._write()

    def mark(self, phase: str) -> float:
        if not self.runs:
            raise RuntimeError("PhaseTimer.mark before begin")
        elapsed = round(self.clock() - self._started, 3)
        self.runs[-1]["phases"][phase] = elapsed
        log.info("k8s phase %s: %.1fs", phase, elapsed)
        self._write()
        return elapsed

    def report(self) -> dict[str, Any]:
        return {"meta": self.meta, "runs": self.runs}

    def _write(self) -> None:
        self.path.write_text(json.dumps(self.report(), indent=2) + "\n", encoding="utf-8")


def format_timings(report: Mapping[str, Any]) -> list[str]:
    """One line per run (boot, reboot-1, ...) for the terminal summary."""
    version = (report.get("meta") or {}).get("kubesolo_version") or "unknown version"
    lines = [f"KubeSolo {version}, seconds from power-on or reboot:"]
    for run in report.get("runs", []):
        phases = ", ".join(f"{name} {secs:.1f}" for name, secs in run["phases"].items())
        lines.append(f"  {run['run']}: {phases or '(no phase reached)'}")
    return lines


# --- waits -------------------------------------------------------------------------------------
# What a poll may raise while a node comes up; anything else is a bug or a dead VM: no retry.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Poll `probe` until it returns something other than None; retry transient errors.

    `KubeBlocked` (and any non-transient error) stops the wait at once.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.25, max=interval),
        retry=retry_if_result(lambda r: r is None) | retry_if_exception_type(TRANSIENT_ERRORS),
        sleep=sleep,
    )
    started = time.monotonic()
    try:
        result = retrying(probe)
    except RetryError as error:
        last = error.last_attempt
        cause = f" (last error: {_one_line(last.exception())})" if last.failed else ""
        raise KubeWaitTimeout(f"{what}: not reached within {timeout:.0f}s{cause}") from None
    if result is None:  # tenacity only returns a result the retry rule accepted
        raise KubeWaitTimeout(f"{what}: no result")
    log.info("%s: %.1fs", what, time.monotonic() - started)
    return result


def _one_line(error: BaseException | None) -> str:
    if isinstance(error, ApiException):
        return f"API {error.status} {error.reason}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


@dataclass
class Budget:
    """One deadline shared by consecutive waits (e.g. the whole bring-up)."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    _end: float = field(init=False)

    def __post_init__(self) -> None:
        self._end = self.clock() + self.seconds

    def remaining(self) -> float:
        return max(1.0, self._end - self.clock())


# Forwards listen on 127.0.0.1: a proxy from the environment could never reach them.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """Status and body of a plain GET from the host (NodePort checks)."""
    with DIRECT.open(url, timeout=timeout) as response:
        return int(response.status), response.read().decode("utf-8", "replace")


# --- the node ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class KubeSettings:
    """What the suites were told on the command line."""

    timeout: float = 900.0
    boot_timeout: float = 900.0
    images_dir: Path | None = None
    nginx_image: str = "docker.io/library/nginx:stable"
    busybox_image: str = "docker.io/library/busybox:stable"
    expect_netpol_enforced: bool = False
    memory_mb: int = 2048  # KubeSolo's floor; --vm-memory may raise it
    cpus: int = 2


def machine_config(settings: KubeSettings) -> dict[str, Any]:
    """MachineConfig fields for a KubeSolo node: room for it, and the image archives."""
    shares = {IMAGES_SHARE_TAG: settings.images_dir} if settings.images_dir else {}
    return {
        "name": "kubesolo",
        "memory_mb": settings.memory_mb,
        "cpus": settings.cpus,
        "data_disk": True,
        "shares": shares,
    }


class KubeNode:
    """One KubeSolo node in a VM: brings it up, hands out clients, waits, dumps its state."""

    def __init__(self, machine: Any, settings: KubeSettings, meta: dict[str, Any] | None = None):
        self.machine = machine
        self.settings = settings
        self.timer = PhaseTimer(Path(machine.run_dir) / TIMINGS_FILE, meta=dict(meta or {}))
        self.api: Any = None
        self._ports: dict[int, int] = {}
        self._boots = 0

    # clients
    @property
    def core(self) -> Any:
        return k8s.CoreV1Api(self.api)

    @property
    def apps(self) -> Any:
        return k8s.AppsV1Api(self.api)

    @property
    def batch(self) -> Any:
        return k8s.BatchV1Api(self.api)

    @property
    def storage(self) -> Any:
        return k8s.StorageV1Api(self.api)

    @property
    def networking(self) -> Any:
        return k8s.NetworkingV1Api(self.api)

    def host_port(self, guest_port: int) -> int:
        """127.0.0.1 port forwarded to a guest port (asked once per port)."""
        if guest_port not in self._ports:
            self._ports[guest_port] = self.machine.forward_port(guest_port)
        return self._ports[guest_port]

    def _wait(self, what: str, probe: Callable[[], T | None], timeout: float) -> T:
        """`wait_for`, stopped at once by a failure on the console: when KubeSolo (PID 1)
        exits the kernel panics, and no API will ever answer within the budget."""

        def watched() -> T | None:
            failure = find_failure(self.machine.console_text())
            if failure:
                pattern, match = failure
                raise KubeBlocked(f"{pattern.description} on the console: {match.group(0)}")
            return probe()

        return wait_for(what, watched, timeout)

    # life cycle
    def bring_up(self) -> None:
        """Boot, then wait phase by phase; preload images last so timings stay clean."""
        self.timer.begin("boot")
        self.machine.start()
        self.host_port(API_PORT)
        self._come_up(old_boot_id=None)
        self.import_images()

    def reboot(self) -> None:
        """Clean reboot from the guest; back when the *new* boot's kubelet reports Ready."""
        old = node_boot_id(self.node())
        before = {d: container_starts(self.deployment_pods(*d)) for d in SYSTEM_ROLLOUTS}
        self._boots += 1
        self.timer.begin(f"reboot-{self._boots}")
        self.machine.reboot()
        self._come_up(old_boot_id=old, before=before)

    def _come_up(
        self,
        old_boot_id: str | None,
        before: Mapping[tuple[str, str], ContainerStarts] | None = None,
    ) -> None:
        """Phase by phase to a usable node; after a reboot (`before` given) the system
        rollouts count only once their pods run containers started by the new boot."""
        budget = Budget(self.settings.timeout)
        self.machine.wait_for_boot(timeout=self.settings.boot_timeout)
        self.timer.mark("boot")
        self._connect(budget)
        self.timer.mark("api")
        self._wait("kubelet /healthz", self._kubelet_healthy, budget.remaining())
        self.timer.mark("kubelet_healthz")
        self._wait("node Ready", lambda: self._fresh_ready_node(old_boot_id), budget.remaining())
        self.timer.mark("node_ready")
        if old_boot_id is None:  # after a reboot, pod phases are stale until the kubelet syncs
            self._wait("first pod Running", self._any_running_pod, budget.remaining())
            self.timer.mark("first_pod_running")
        for namespace, name in SYSTEM_ROLLOUTS:
            self.wait_rollout(namespace, name, timeout=budget.remaining())
            if before is not None:
                self._wait_restarted(namespace, name, before[namespace, name], budget)
            self.timer.mark(f"{name}_rollout")

    def _wait_restarted(
        self, namespace: str, name: str, before: ContainerStarts, budget: Budget
    ) -> None:
        def probe() -> bool | None:
            return (
                True if restarted_and_ready(self.deployment_pods(namespace, name), before) else None
            )

        self._wait(f"pods of {namespace}/{name} restarted", probe, budget.remaining())

    def deployment_pods(self, namespace: str, name: str) -> list[Any]:
        """The pods a Deployment selects."""
        deployment = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=10)
        return self._pods(namespace, deployment.spec.selector.match_labels or {})

    def _connect(self, budget: Budget) -> None:
        """Kubeconfig exists only once the API passed /healthz; then the API must answer."""
        config = self._wait("admin kubeconfig", self._kubeconfig, budget.remaining())
        self.api = api_client_from_kubeconfig(config)
        version = k8s.VersionApi(self.api)
        self._wait(
            "API /version", lambda: version.get_code(_request_timeout=10), budget.remaining()
        )

    def _kubeconfig(self) -> dict[str, Any] | None:
        """The rewritten admin kubeconfig, or None while there is none or only part of one:
        KubeSolo rewrites the file (truncate, write) on every start, also after a reboot."""
        if self.machine.execute(f"test -s {ADMIN_KUBECONFIG}")[0] != 0:
            return None
        try:
            return rewrite_kubeconfig(self.machine.kubeconfig(), self.host_port(API_PORT))
        except (KubeconfigError, yaml.YAMLError):
            return None

    def _kubelet_healthy(self) -> bool | None:
        status, output = self.machine.execute(kubelet_healthz_command(), timeout=30)
        return True if status == 0 and output.strip() == "ok" else None

    def _fresh_ready_node(self, old_boot_id: str | None) -> Any:
        nodes = self.core.list_node(_request_timeout=10).items
        ready = [n for n in nodes if node_ready_after_reboot(n, old_boot_id)]
        return ready[0] if ready else None

    def _any_running_pod(self) -> Any:
        pods = self.core.list_pod_for_all_namespaces(_request_timeout=10).items
        return next((p for p in pods if pod_running(p)), None)

    # images
    def import_images(self) -> list[str]:
        """Import --kubesolo-images with ctr (only now: earlier races KubeSolo's own import)."""
        if self.settings.images_dir is None:
            return []
        names = image_archives(self.settings.images_dir)
        if not names:
            raise KubeBlocked(f"no image archives (*.tar) in {self.settings.images_dir}")
        self.machine.succeed(mount_share_command(), timeout=60)
        socket = self.machine.succeed(containerd_socket_command(), timeout=30).strip()
        if not socket:
            raise KubeBlocked("no containerd socket found on the node")
        for command in import_commands(socket, names):
            self.machine.succeed(command, timeout=max(600.0, self.settings.timeout))
        listing = self.machine.succeed(ctr_command(socket, "images", "ls", "-q"), timeout=60)
        present = listing.split()
        wanted = (self.settings.nginx_image, self.settings.busybox_image)
        tags = image_tags(present, wanted, self.settings.busybox_image)
        for target, source in tags.items():
            self.machine.succeed(ctr_command(socket, "images", "tag", source, target), timeout=60)
        missing = missing_images([*present, *tags], wanted)
        if missing:
            raise KubeBlocked(
                f"{', '.join(missing)} not among the images {', '.join(names)} gave "
                f"({', '.join(sorted(present))}): an OCI archive's ref name must name the "
                "image, not only a tag (see README)"
            )
        self.timer.mark("images_imported")
        return names

    # workloads
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
            created.extend(k8s_utils.create_from_dict(self.api, doc, namespace=namespace))
        return created

    def create_namespace(self, name: str) -> None:
        """Create a namespace and wait for its `default` ServiceAccount: until the controller
        manager adds it, the ServiceAccount admission plugin rejects every pod there."""
        namespace = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))
        self.core.create_namespace(namespace, _request_timeout=10)
        self._wait(
            f"ServiceAccount {name}/default",
            lambda: self.core.read_namespaced_service_account("default", name, _request_timeout=10),
            self.settings.timeout,
        )

    def node(self) -> Any:
        nodes = self.core.list_node(_request_timeout=10).items
        if len(nodes) != 1:
            raise KubeError(f"expected one KubeSolo node, the API lists {len(nodes)}")
        return nodes[0]

    def wait_rollout(self, namespace: str, name: str, timeout: float | None = None) -> Any:
        def probe() -> Any:
            deployment = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=10)
            if rollout_complete(deployment):
                return deployment
            self._raise_if_blocked(namespace, deployment.spec.selector.match_labels or {})
            return None

        return self._wait(f"rollout of {namespace}/{name}", probe, timeout or self.settings.timeout)

    def _pods(self, namespace: str, labels: Mapping[str, str]) -> list[Any]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return list(
            self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=10
            ).items
        )

    def _raise_if_blocked(self, namespace: str, labels: Mapping[str, str]) -> None:
        for pod in self._pods(namespace, labels):
            reason = pod_blocker(pod)
            if reason:
                raise KubeBlocked(reason)

    def wait_pod(
        self, namespace: str, name: str, done: Callable[[Any], bool] = pod_finished
    ) -> Any:
        def probe() -> Any:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=10)
            if done(pod):
                return pod
            reason = pod_blocker(pod)
            if reason:
                raise KubeBlocked(reason)
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
        return str(self.core.read_namespaced_pod_log(name, namespace, _request_timeout=30))

    def delete_pod(self, namespace: str, name: str) -> None:
        """Delete and wait until the API no longer has it."""
        self.core.delete_namespaced_pod(
            name, namespace, grace_period_seconds=0, _request_timeout=10
        )

        def gone() -> bool | None:
            try:
                self.core.read_namespaced_pod(name, namespace, _request_timeout=10)
            except ApiException as error:
                if error.status == 404:
                    return True
                raise
            return None

        self._wait(f"deletion of pod {namespace}/{name}", gone, self.settings.timeout)

    def wait_job(self, namespace: str, name: str) -> Any:
        def probe() -> Any:
            job = self.batch.read_namespaced_job(name, namespace, _request_timeout=10)
            if job_failed(job):
                raise KubeBlocked(f"job {namespace}/{name} failed")
            if job_complete(job):
                return job
            self._raise_if_blocked(namespace, {"job-name": name})
            return None

        return self._wait(f"job {namespace}/{name}", probe, self.settings.timeout)

    def wait_pvc_bound(self, namespace: str, name: str) -> Any:
        def probe() -> Any:
            pvc = self.core.read_namespaced_persistent_volume_claim(
                name, namespace, _request_timeout=10
            )
            return pvc if pvc_bound(pvc) else None

        return self._wait(f"PVC {namespace}/{name} Bound", probe, self.settings.timeout)

    def http_from_host(self, guest_port: int, path: str = "/") -> tuple[int, str]:
        """GET through a host forward, retried while kube-proxy programs its rules."""
        url = f"http://127.0.0.1:{self.host_port(guest_port)}{path}"
        return self._wait(f"GET {url}", lambda: http_get(url), self.settings.timeout)

    # diagnostics
    def dump(self) -> str:
        """Node conditions, pod states, events and KubeSolo's console lines, as text."""
        sections = {
            "node conditions": self._section(
                lambda: format_nodes(self.core.list_node(_request_timeout=10).items)
            ),
            "pods": self._section(
                lambda: format_pods(
                    self.core.list_pod_for_all_namespaces(_request_timeout=10).items
                )
            ),
            "events": self._section(
                lambda: format_events(
                    self.core.list_event_for_all_namespaces(_request_timeout=10).items
                )
            ),
            "KubeSolo console": self._section(
                lambda: kubesolo_console_lines(self.machine.console_text()), needs_api=False
            ),
        }
        return failure_dump(sections)

    def _section(self, collect: Callable[[], list[str]], needs_api: bool = True) -> list[str]:
        if needs_api and self.api is None:
            return ["(no API client: the kubeconfig was never read)"]
        try:
            return collect()
        except Exception as error:  # a dump must never hide the real failure
            return [f"(unavailable: {_one_line(error)})"]

    def save_dump(self) -> Path:
        path = Path(self.machine.run_dir) / DUMP_FILE
        path.write_text(self.dump(), encoding="utf-8")
        return path
