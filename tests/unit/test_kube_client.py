"""The API client from KubeSolo's admin kubeconfig (docs/kubesolo.md "Files and ports"):
the server rewritten to the host forward, TLS kept verifying, no proxy."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import pytest
import urllib3
import yaml
from kube_fakes import b64, kubesolo_kubeconfig

from harness.k8s.client import (
    api_client_from_kubeconfig,
    kubeconfig_of_this_boot,
    parse_stamps,
    rewrite_kubeconfig,
    select_context,
)
from harness.k8s.commands import kubeconfig_stamps_command
from harness.k8s.errors import KubeconfigError
from harness.k8s.kubesolo import ADMIN_CONTEXT


class TestKubeconfig:
    def test_server_points_at_forwarded_port_and_tls_data_is_kept(self) -> None:
        config = rewrite_kubeconfig(kubesolo_kubeconfig(), 41234)
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == "https://127.0.0.1:41234"
        assert cluster["certificate-authority-data"] == b64("CA")
        assert "tls-server-name" not in cluster
        assert config["users"][0]["user"]["client-certificate-data"] == b64("CERT")
        assert config["users"][0]["user"]["client-key-data"] == b64("KEY")

    def test_node_ip_server_keeps_verifying_against_its_name(self) -> None:
        config = rewrite_kubeconfig(kubesolo_kubeconfig("https://10.0.2.15:6443"), 5)
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == "https://127.0.0.1:5"
        assert cluster["tls-server-name"] == "10.0.2.15"

    def test_insecure_skip_verify_is_dropped(self) -> None:
        text = kubesolo_kubeconfig(extra="insecure-skip-tls-verify: true")
        cluster = rewrite_kubeconfig(text, 5)["clusters"][0]["cluster"]
        assert "insecure-skip-tls-verify" not in cluster

    def test_certificate_context_wins_over_token_context(self) -> None:
        config = rewrite_kubeconfig(kubesolo_kubeconfig(), 5)
        assert config["current-context"] == ADMIN_CONTEXT

    def test_current_context_is_the_fallback(self) -> None:
        config = {"contexts": [{"name": "other"}], "current-context": "other"}
        assert select_context(config) == "other"

    def test_no_context_is_an_error(self) -> None:
        with pytest.raises(KubeconfigError):
            select_context({"contexts": []})

    @pytest.mark.parametrize("text", ["", "not: [a, kubeconfig", "clusters: []", "- x"])
    def test_unusable_text_is_one_clear_error(self, text: str) -> None:
        with pytest.raises((KubeconfigError, yaml.YAMLError)):
            rewrite_kubeconfig(text, 5)

    def test_cluster_without_server_is_an_error(self) -> None:
        with pytest.raises(KubeconfigError, match="no server"):
            rewrite_kubeconfig("clusters: [{name: a, cluster: {}}]", 5)

    def test_api_client_ignores_the_hosts_proxy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The server is a 127.0.0.1 forward: a proxy from the environment cannot reach it."""
        for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(var, "http://proxy.invalid:3128")
        for var in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(var, raising=False)
        api = api_client_from_kubeconfig(rewrite_kubeconfig(kubesolo_kubeconfig(), 5))
        assert not api.configuration.proxy
        assert not isinstance(api.rest_client.pool_manager, urllib3.ProxyManager)

    def test_api_client_verifies_tls_against_the_original_name(self) -> None:
        config = rewrite_kubeconfig(kubesolo_kubeconfig("https://10.0.2.15:6443"), 41234)
        api = api_client_from_kubeconfig(config)
        assert api.configuration.host == "https://127.0.0.1:41234"
        assert api.configuration.verify_ssl is True
        assert api.configuration.tls_server_name == "10.0.2.15"
        assert Path(api.configuration.ssl_ca_cert).read_text() == "CA"
        assert Path(api.configuration.cert_file).read_text() == "CERT"


# ---- one request timeout on every API call ----
API_RECEIVER = re.compile(r"(^|\.)(core|apps|batch|storage|networking|version)$")
REPO = Path(__file__).resolve().parents[2]
CALLERS = [
    *sorted((REPO / "harness" / "k8s").glob("*.py")),
    REPO / "harness" / "pytest" / "k8s.py",
    *sorted((REPO / "tests" / "k8s").glob("test_k8s_*.py")),
]


def api_calls(path: Path) -> list[ast.Call]:
    """Calls of a `kubernetes` API method (`kube.core.read_...`, `version.get_code`, the
    manifest creator) in one source file."""
    calls = []
    for call in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            continue
        receiver = ast.unparse(call.func.value)
        if API_RECEIVER.search(receiver) or call.func.attr == "create_from_dict":
            calls.append(call)
    return calls


def test_every_api_call_of_the_harness_and_the_suites_has_a_request_timeout() -> None:
    """A call without one hangs for ever on a node that stopped answering."""
    found, missing = 0, []
    for path in CALLERS:
        for call in api_calls(path):
            found += 1
            if not any(k.arg == "_request_timeout" for k in call.keywords):
                missing.append(f"{path.relative_to(REPO)}:{call.lineno} {ast.unparse(call)}")
    assert found >= 20, found  # the scan sees the calls it is meant to check
    assert missing == []


# ---- only this boot's kubeconfig ----
@pytest.mark.parametrize(
    ("mtime", "boot_time", "expected"),
    [
        (1_764_150_000, 1_764_149_000, True),  # written by this boot's KubeSolo
        (1_764_149_000, 1_764_149_000, True),  # in this boot's first second
        (1_764_148_000, 1_764_149_000, False),  # the previous boot's copy
    ],
)
def test_only_a_kubeconfig_written_since_this_boot_counts(
    mtime: int, boot_time: int, expected: bool
) -> None:
    assert kubeconfig_of_this_boot(mtime, boot_time) is expected


@pytest.mark.parametrize(
    ("output", "stamps"),
    [
        ("1764150000\n1764149000\n", (1764150000, 1764149000)),
        ("", None),  # stat failed: no file yet
        ("1764150000\n", None),
        ("stat: can't stat\n1764149000\n", None),
    ],
)
def test_stamps_are_two_numbers(output: str, stamps: tuple[int, int] | None) -> None:
    assert parse_stamps(output) == stamps


def test_the_stamps_command_runs_in_busybox_sh(tmp_path: Path) -> None:
    """The exact guest command, under the image's busybox, on this host's /proc/stat: a file
    written now is of this boot, one dated before the boot is not."""
    busybox = Path("/bin/busybox")  # Debian's busybox-static, the image's
    if not busybox.is_file():
        pytest.fail(f"{busybox} not found: install busybox-static (scripts/setup.sh does)")
    applets = tmp_path / "bin"
    applets.mkdir()
    for applet in ("stat", "sed"):
        (applets / applet).symlink_to(busybox)
    kubeconfig = tmp_path / "admin.kubeconfig"
    kubeconfig.write_text("apiVersion: v1\n")

    def stamps() -> tuple[int, int] | None:
        result = subprocess.run(
            [str(busybox), "sh", "-c", kubeconfig_stamps_command(str(kubeconfig))],
            capture_output=True,
            text=True,
            env={"PATH": str(applets)},
            check=True,
        )
        return parse_stamps(result.stdout)

    fresh = stamps()
    assert fresh is not None and kubeconfig_of_this_boot(*fresh)
    os.utime(kubeconfig, (fresh[1] - 3600, fresh[1] - 3600))
    stale = stamps()
    assert stale is not None and not kubeconfig_of_this_boot(*stale)
