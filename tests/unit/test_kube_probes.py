"""What the probe pods print, parsed: busybox wget status lines and nslookup answers."""

from __future__ import annotations

import pytest

from harness.k8s.probes import parse_http_status, resolved_addresses

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
