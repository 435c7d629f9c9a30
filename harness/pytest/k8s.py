"""pytest side of the Kubernetes suites: options, the `kube` node fixture, failure reports.

Registered as the pytest11 entry point `kubesolo-k8s`. The `kube` fixture checks the image
manifest *before* booting anything, so without a real KubeSolo binary every k8s test skips
with one reason and no VM starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from kubernetes.client.exceptions import ApiException

from harness.build.workload_images import build_workload_images
from harness.errors import UserError
from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.commands import unmount_shares_command
from harness.k8s.node import KubeNode
from harness.k8s.settings import DEFAULT_K8S_TIMEOUT, KubeSettings, machine_config
from harness.k8s.timings import PhaseTimer, format_timings, timings_file
from harness.pytest.shared_nodes import NodePlan, SharedNodes
from harness.pytest.snapshots import SnapshotStore, Up, directory_digest
from harness.vm.config import DEFAULT_BOOT_TIMEOUT
from harness.vm.machine import Machine
from harness.vm.protocols import Target
from harness.vm.relay import RemoteMachine

SHARED_NODE = "kubesolo"  # the run's shared node (harness.pytest.shared_nodes)
SKIP_REASON = "needs a real KubeSolo binary: pass --kubesolo-bin (see README)"
TIMINGS = pytest.StashKey[PhaseTimer]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kubesolo-k8s", "KubeSolo Kubernetes suites (tests/k8s)")
    group.addoption(
        "--kubesolo-images",
        metavar="DIR",
        default=None,
        help="directory of image archives (docker-archive or OCI .tar) to preload into "
        "KubeSolo's containerd (default: nginx and busybox built here from Debian packages, "
        "`kubesolo-harness images`)",
    )
    group.addoption(
        "--expect-netpol-enforced",
        action="store_true",
        default=False,
        help="fail, instead of xfail, when NetworkPolicy is not enforced (policy-capable CNI)",
    )
    group.addoption(
        "--k8s-timeout",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_K8S_TIMEOUT,
        help=f"budget for API, node Ready and rollouts, and each workload wait (default "
        f"{DEFAULT_K8S_TIMEOUT:.0f}, sized for TCG: see the README's timing budget)",
    )
    group.addoption(
        "--k8s-nginx-image",
        metavar="REF",
        default=KubeSettings.nginx_image,
        help=f"nginx image the suites run (default {KubeSettings.nginx_image})",
    )
    group.addoption(
        "--k8s-busybox-image",
        metavar="REF",
        default=KubeSettings.busybox_image,
        help=f"busybox image for client pods (default {KubeSettings.busybox_image})",
    )


def settings_from_config(config: pytest.Config) -> KubeSettings:
    """KubeSettings from the command line; a wrong --kubesolo-images is a usage error."""
    images = config.getoption("kubesolo_images")
    images_dir = Path(images).expanduser().resolve() if images else None
    if images_dir is not None and not images_dir.is_dir():
        raise pytest.UsageError(f"--kubesolo-images: {images_dir} is not a directory")
    return KubeSettings(
        timeout=float(config.getoption("k8s_timeout")),
        images_dir=images_dir,
        nginx_image=config.getoption("k8s_nginx_image"),
        busybox_image=config.getoption("k8s_busybox_image"),
        expect_netpol_enforced=bool(config.getoption("expect_netpol_enforced")),
        memory_mb=max(KubeSettings.memory_mb, config.getoption("vm_memory", default=0) or 0),
        cpus=max(KubeSettings.cpus, config.getoption("vm_cpus", default=0) or 0),
    )


def k8s_time_limit(boot_timeout: float, k8s_timeout: float, configured: float | None) -> float:
    """pytest-timeout for one k8s test, never below the budgets it may spend: the shared
    node's bring-up (a boot and KubeSolo's start, here or in the worker it waits for), a
    node of its own (one more of each with --no-snapshots), its reboot (one more), the
    attaches and its workloads. 0 (no limit, or the user turned it off) stays 0."""
    if not configured:
        return 0.0
    return max(configured, 3 * boot_timeout + 6 * k8s_timeout)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Raise the per-test limit (1800 s in pyproject) for k8s tests: --k8s-timeout must be
    able to grow without pytest-timeout killing a slow but healthy TCG bring-up. The boot
    is the one OS boot of every machine (--boot-timeout); KubeSolo's start is --k8s-timeout."""
    boot_timeout = config.getoption("boot_timeout", default=None) or DEFAULT_BOOT_TIMEOUT
    limit = k8s_time_limit(
        float(boot_timeout),
        float(config.getoption("k8s_timeout")),
        getattr(config, "_env_timeout", None),  # pytest-timeout's --timeout / ini value
    )
    for item in items:
        if limit and item.get_closest_marker("k8s") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(limit))


def require_real_kubesolo(manifest: dict[str, Any]) -> None:
    """Skip (no VM boot) when the image carries the stand-in instead of KubeSolo."""
    if manifest.get("kubesolo") != "real":
        pytest.skip(SKIP_REASON)


def namespace_name(test_name: str) -> str:
    """A fresh RFC 1123 label per test, readable in dumps: t-<test>-<random>."""
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower().removeprefix("test_")).strip("-")
    return f"t-{stem[:48].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def kube_settings(pytestconfig: pytest.Config) -> KubeSettings:
    return settings_from_config(pytestconfig)


@dataclasses.dataclass(frozen=True)
class KubePlan:
    """The run's KubeSolo node (its "up": Ready, rollouts done, shares
    unmounted) and the suites' settings."""

    node: NodePlan
    settings: KubeSettings
    timer: PhaseTimer  # every node's runs in this process: boot, attach, restore, reboot-N


def on_qemu(vm: RemoteMachine | Target) -> Machine | RemoteMachine:
    """The node's images reach it over 9p: a board skips."""
    if not isinstance(vm, Machine | RemoteMachine):
        pytest.skip("needs QEMU: the suites' images reach the node over 9p")
    return vm


def fail_with_dump(node: KubeNode, what: str, error: Exception) -> NoReturn:
    """Whatever broke (VM, API, waits), the dump tells why."""
    dump_path = node.save_dump()
    dump = dump_path.read_text(encoding="utf-8")
    pytest.fail(f"{what}: {error}\n({dump_path})\n\n{dump}", pytrace=False)


def ready_node(settings: KubeSettings, timer: PhaseTimer) -> Up:
    """The "up" of the run's node: KubeSolo Ready with its rollouts done, then the
    images share unmounted, so that the Ready node can be saved and restored."""

    def ready(vm: Target) -> None:
        node = KubeNode(on_qemu(vm), settings, timer=timer)
        try:
            node.come_up()
        except Exception as error:
            fail_with_dump(node, "KubeSolo node did not come up", error)
        vm.succeed(unmount_shares_command(), timeout=60)

    return ready


@pytest.fixture(scope="session")
def kube_plan(
    pytestconfig: pytest.Config,
    kubesolo_image: Any,
    kube_settings: KubeSettings,
    tmp_path_factory: pytest.TempPathFactory,
) -> KubePlan:
    """The node the k8s tests need; checked before anything boots: without a real
    KubeSolo binary every k8s test skips with one reason."""
    manifest = kubesolo_image.manifest
    require_real_kubesolo(manifest)
    if kube_settings.images_dir is None:  # no archives given: our own, built from Debian
        built = tmp_path_factory.mktemp("workload-images")
        try:
            build_workload_images(built)
        except UserError as error:
            pytest.fail(f"workload images: {error}", pytrace=False)
        kube_settings = dataclasses.replace(kube_settings, images_dir=built)
    assert kube_settings.images_dir is not None
    meta = {"kubesolo_version": manifest.get("kubesolo_version")}
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    chosen = pytestconfig.getoption("artifacts", default=None)  # the main plugin's option
    artifacts = Path(chosen).resolve() if chosen else tmp_path_factory.getbasetemp()
    artifacts.mkdir(parents=True, exist_ok=True)
    timer = PhaseTimer(artifacts / timings_file(worker), meta=meta)
    pytestconfig.stash[TIMINGS] = timer
    held = (
        f"kubesolo {manifest.get('kubesolo_sha256')}, images "
        f"{directory_digest(kube_settings.images_dir)}, "
        f"{kube_settings.nginx_image} {kube_settings.busybox_image}"
    )
    node = NodePlan(machine_config(kube_settings), ready_node(kube_settings, timer), held)
    return KubePlan(node, kube_settings, timer)


def attached(vm: RemoteMachine | Target, plan: KubePlan) -> KubeNode:
    """A KubeNode driving `vm`, a node up already (shared, or restored Ready)."""
    machine = on_qemu(vm)
    node = KubeNode(machine, plan.settings, timer=plan.timer)
    try:
        node.attach(restored_at=machine.restored_at)
    except Exception as error:
        fail_with_dump(node, "KubeSolo node is not usable", error)
    return node


@pytest.fixture(scope="session")
def kube(kube_plan: KubePlan, shared_nodes: SharedNodes) -> KubeNode:
    """The run's KubeSolo node, shared by every worker (docs/kubesolo.md "Shared
    node"): the first to ask brings it up, or restores it Ready from the run's
    snapshot; each test keeps to its own namespace."""
    return attached(kube_plan.node.shared(shared_nodes, SHARED_NODE), kube_plan)


@pytest.fixture
def own_kube(
    request: pytest.FixtureRequest,
    kube: KubeNode,
    kube_plan: KubePlan,
    machine_factory: Any,
    snapshot_store: SnapshotStore,
) -> KubeNode:
    """A KubeSolo node of the test's own, for a test that reboots it or disturbs its
    system pods: restored from the run's snapshot of the shared node, Ready (booted
    and brought up when the run has no snapshot). It comes after `kube`, which saves it."""
    vm = kube_plan.node.own(snapshot_store, machine_factory, request.node.nodeid)
    return attached(vm, kube_plan)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The phase timings users compare between KubeSolo releases."""
    timer = config.stash.get(TIMINGS, None)
    if timer is not None and timer.runs:
        terminalreporter.section("KubeSolo phase timings")
        for line in format_timings(timer.report()):
            terminalreporter.write_line(line)


def namespace_on(node: KubeNode, test_name: str) -> Iterator[str]:
    """A namespace of the test's own, ready for pods, deleted afterwards (in the background)."""
    name = namespace_name(test_name)
    node.create_namespace(name)
    yield name
    try:
        node.core.delete_namespace(
            name, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT
        )
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture
def k8s_namespace(kube: KubeNode, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own on the shared node."""
    yield from namespace_on(kube, request.node.name)


@pytest.fixture
def own_namespace(own_kube: KubeNode, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own on its own node."""
    yield from namespace_on(own_kube, request.node.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the node's state to a failing k8s test, and keep it in the run directory."""
    report = yield
    funcargs = getattr(item, "funcargs", {})
    node = funcargs.get("own_kube") or funcargs.get("kube")
    if report.when == "call" and report.failed and isinstance(node, KubeNode):
        dump = node.dump()
        report.sections.append(("KubeSolo node state", dump))
        path = Path(node.machine.run_dir) / f"k8s-dump-{item.name}.txt"
        path.write_text(dump, encoding="utf-8")
        report.user_properties.append(("kubesolo_dump", str(path)))
    return report
