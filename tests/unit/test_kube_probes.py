"""What the probe pods print, parsed: busybox wget status lines and nslookup answers."""

from __future__ import annotations

import http.server
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.k8s.commands import boot_id_command, ipv4_addresses_command
from harness.k8s.manifests import load_manifest
from harness.k8s.probes import (
    ipv4_addresses,
    parse_http_status,
    probe_verdict,
    resolved_addresses,
)

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
        assert parse_http_status(WGET_LOG) == 200
        assert parse_http_status("wget: server returned error: HTTP/1.1 404 Not Found") == 404
        assert parse_http_status("wget: download timed out") is None

    def test_last_status_wins_after_a_redirect(self) -> None:
        assert parse_http_status("HTTP/1.1 301 Moved\nHTTP/1.1 200 OK\n") == 200

    @pytest.mark.parametrize("output", [NSLOOKUP_NEW, NSLOOKUP_OLD])
    def test_nslookup_answer_not_server(self, output: str) -> None:
        name = "kubernetes.default.svc.cluster.local"
        assert resolved_addresses(output, name) == {"10.43.0.1"}

    def test_nslookup_failure_resolves_nothing(self) -> None:
        output = "Server: 10.43.0.10\n** server can't find kubernetes.default: NXDOMAIN\n"
        assert resolved_addresses(output, "kubernetes.default") == set()


# ---- the HTTP probe's verdict ----
@pytest.mark.parametrize(
    ("output", "verdict"),
    [
        (WGET_LOG + "http-probe: answered\n", ("answered", "")),
        ("wget: download timed out\nhttp-probe: timeout\n", ("timeout", "")),
        (
            "http-probe: failed: wget: can't connect to remote host: Connection refused\n",
            ("failed", "wget: can't connect to remote host: Connection refused"),
        ),
        ("http-probe: failed: \n", ("failed", "")),
        ("Connecting to 10.43.200.7 (10.43.200.7:80)\n", None),  # killed before its verdict
        ("", None),
    ],
)
def test_probe_verdict(output: str, verdict: tuple[str, str] | None) -> None:
    assert probe_verdict(output) == verdict


BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static; the probe's busybox is the image's


class Server:
    """127.0.0.1 HTTP server answering `status` with nginx's page, or never answering."""

    def __init__(self, status: int = 200, silent: bool = False) -> None:
        release = self.release = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if silent:
                    release.wait(30)
                    return
                body = b"<title>Welcome to nginx!</title>\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def run_http_probe(url: str, tmp_path: Path, attempts: int = 1) -> str:
    """The http-probe manifest's script, as the pod runs it, under busybox sh."""
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} not found: install busybox-static (scripts/setup.sh does)")
    values = {"NAME": "p", "ACCESS": "a", "URL": url, "SETTLE": 0, "ATTEMPTS": attempts}
    (doc,) = load_manifest("http-probe", {"BUSYBOX_IMAGE": "busybox", **values})
    script = doc["spec"]["containers"][0]["args"][0]
    applets = tmp_path / "bin"
    applets.mkdir()
    for applet in ("cat", "sleep", "tail", "timeout", "wget"):
        (applets / applet).symlink_to(BUSYBOX)
    result = subprocess.run(
        [str(BUSYBOX), "sh", "-c", script.replace("/tmp/out", str(tmp_path / "out"))],
        capture_output=True,
        text=True,
        env={"PATH": str(applets)},
        timeout=120,
        check=False,
    )
    assert (result.returncode == 0) == result.stdout.endswith("http-probe: answered\n")
    return result.stdout


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("server", "verdict", "detail"),
    [
        (Server, "answered", ""),
        (lambda: Server(status=404), "failed", "404"),  # got through: not blocked
        (None, "failed", "Connection refused"),  # refused: not blocked either
        (lambda: Server(silent=True), "timeout", ""),  # nothing came back: blocked
    ],
)
def test_the_http_probe_tells_blocked_from_broken(
    tmp_path: Path, server: Any, verdict: str, detail: str
) -> None:
    """Only a probe whose every attempt timed out says `timeout`; refused or an error
    status say `failed`, so a flaky probe never passes for NetworkPolicy enforcement."""
    running = server() if server else None
    url = running.url if running else f"http://127.0.0.1:{closed_port()}/"
    try:
        output = run_http_probe(url, tmp_path)
    finally:
        if running:
            running.close()
    found = probe_verdict(output)
    assert found is not None and found[0] == verdict, output
    assert detail in found[1]
    if verdict == "answered":
        assert parse_http_status(output) == 200 and "Welcome to nginx!" in output


# ---- the guest's own commands ----
IP_ADDR = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global eth0\\       valid_lft forever\n"
    "5: cni0    inet 10.42.0.1/16 brd 10.42.255.255 scope global cni0\\       valid_lft forever\n"
)


def test_ipv4_addresses_of_busybox_ip() -> None:
    assert ipv4_addresses(IP_ADDR) == {"127.0.0.1", "10.0.2.15", "10.42.0.1"}
    assert ipv4_addresses("") == set()


def test_the_guest_commands_run_in_busybox(tmp_path: Path) -> None:
    """The address and boot-id commands, under the image's busybox on this host."""
    if not BUSYBOX.is_file():
        pytest.fail(f"{BUSYBOX} not found: install busybox-static (scripts/setup.sh does)")
    applets = tmp_path / "bin"
    applets.mkdir()
    for applet in ("cat", "ip"):
        (applets / applet).symlink_to(BUSYBOX)

    def sh(command: str) -> str:
        return subprocess.run(
            [str(BUSYBOX), "sh", "-c", command],
            capture_output=True,
            text=True,
            env={"PATH": str(applets)},
            check=True,
        ).stdout

    assert "127.0.0.1" in ipv4_addresses(sh(ipv4_addresses_command()))
    boot_id = sh(boot_id_command()).strip()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", boot_id)
