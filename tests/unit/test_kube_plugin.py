"""The pytest side of the k8s suites: options, the skip without KubeSolo, time limits."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.k8s.commands import IMAGES_SHARE_TAG
from harness.k8s.settings import DEFAULT_K8S_TIMEOUT, KubeSettings, machine_config
from harness.pytest import k8s as kube_plugin
from harness.vm.config import DEFAULT_BOOT_TIMEOUT

pytest_plugins = ["pytester"]


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
        config = machine_config(KubeSettings(images_dir=tmp_path))
        assert config["memory_mb"] >= 2048 and config["cpus"] == 2
        assert config["shares"] == {IMAGES_SHARE_TAG: tmp_path}
        assert machine_config(KubeSettings())["shares"] == {}

    def test_settings_from_options(self, tmp_path: Path) -> None:
        options = {
            "kubesolo_images": str(tmp_path),
            "k8s_timeout": 120.0,
            "k8s_nginx_image": "n:1",
            "k8s_busybox_image": "b:1",
            "expect_netpol_enforced": True,
            "vm_memory": 4096,
            "vm_cpus": 1,
        }
        config = SimpleNamespace(getoption=lambda name, default=None: options.get(name, default))
        settings = kube_plugin.settings_from_config(config)  # type: ignore[arg-type]
        assert settings == KubeSettings(
            timeout=120.0,
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

@pytest.fixture(scope="session")
def shared_nodes(session_machine_factory):
    class Nodes:
        def node(self, name, settings, up, **how):
            return session_machine_factory(**settings)
    return Nodes()

@pytest.fixture
def machine_factory(session_machine_factory):
    return session_machine_factory

@pytest.fixture(scope="session")
def snapshot_store():
    return None
"""


@pytest.mark.parametrize("flavour", ["standin", "real"])
def test_k8s_suites_skip_without_kubesolo_and_boot_with_it(
    pytester: pytest.Pytester, flavour: str
) -> None:
    """The whole tests/k8s tree against a fake image: one skip reason, no VM, for the stand-in."""
    pytester.makeconftest(FAKE_CONFTEST % flavour)
    suites = Path(__file__).resolve().parent.parent / "k8s"
    for source in suites.glob("test_k8s_*.py"):
        # a fresh module name: the real suites may already be imported in this session
        pytester.makepyfile(**{f"test_copy_{source.stem[5:]}": source.read_text()})
    # Only this plugin, under its module name: the entry points (if installed) stay out.
    isolated = ("-p", "no:kubesolo", "-p", "no:kubesolo-k8s", "-p", "harness.pytest.k8s")
    # archives given: the node would not build the workload images (pytester's HOME is empty)
    images = pytester.mkdir("images")
    result = pytester.runpytest_inprocess(*isolated, "-rs", "--kubesolo-images", str(images))
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


class TestTimeLimit:
    def test_the_readme_quotes_the_k8s_timeout_default(self) -> None:
        """The option table and the timing budget state the default the option has."""
        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
        row = next(ln for ln in readme.splitlines() if ln.startswith("| `--k8s-timeout"))
        default = f"{DEFAULT_K8S_TIMEOUT:.0f}"
        assert f"| {default} |" in row
        assert f"`--k8s-timeout` (default {default} s)" in readme

    def test_limit_covers_the_budgets_and_never_lowers_the_users(self) -> None:
        assert kube_plugin.k8s_time_limit(240, 900, 1800) == 3 * 240 + 6 * 900
        assert kube_plugin.k8s_time_limit(240, 60, 1800) == 1800
        assert kube_plugin.k8s_time_limit(240, 900, 99999) == 99999

    @pytest.mark.parametrize("configured", [None, 0.0])
    def test_no_limit_stays_no_limit(self, configured: float | None) -> None:
        assert kube_plugin.k8s_time_limit(240, 900, configured) == 0

    def test_k8s_tests_get_the_limit_others_keep_theirs(self, pytester: pytest.Pytester) -> None:
        pytester.makeconftest(
            'def pytest_configure(config):\n    config.addinivalue_line("markers", "k8s: x")\n'
        )
        expected = 3 * DEFAULT_BOOT_TIMEOUT + 6 * 600  # the machines' one boot timeout
        pytester.makepyfile(
            textwrap.dedent(
                """
                import pytest

                def limit(request):
                    marker = request.node.get_closest_marker("timeout")
                    return marker.args[0] if marker else None

                @pytest.mark.k8s
                def test_k8s(request):
                    assert limit(request) == EXPECTED

                @pytest.mark.k8s
                @pytest.mark.timeout(7)
                def test_own(request):
                    assert limit(request) == 7

                def test_other(request):
                    assert limit(request) is None
                """
            ).replace("EXPECTED", repr(expected))
        )
        isolated = ("-p", "no:kubesolo", "-p", "no:kubesolo-k8s", "-p", "harness.pytest.k8s")
        result = pytester.runpytest_inprocess(
            *isolated, "--timeout", "1800", "--k8s-timeout", "600"
        )
        result.assert_outcomes(passed=3)
