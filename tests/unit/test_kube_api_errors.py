"""Which API errors a wait retries and which stop it at once with the reason: start-up
noise is retried, a 401/403 or a certificate that does not verify is not."""

from __future__ import annotations

import http.server
import json
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from harness.k8s.api_errors import is_transient, permanent_reason
from harness.k8s.client import REQUEST_TIMEOUT
from harness.k8s.errors import ApiRejected, KubeBlocked
from harness.k8s.waits import wait_for

VERIFY_FAILED = ssl.SSLCertVerificationError(
    1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
)
WRONG_NAME = ssl.SSLCertVerificationError(
    1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch"
)


def max_retry(reason: Exception) -> urllib3.exceptions.MaxRetryError:
    """What the kubernetes client raises once urllib3 gives up on a request."""
    return urllib3.exceptions.MaxRetryError(None, "/version", reason)  # type: ignore[arg-type]


# (error, "transient" | "permanent" | "bug")
TABLE = [
    (ApiException(status=401, reason="Unauthorized"), "permanent"),
    (ApiException(status=403, reason="Forbidden"), "permanent"),
    (ApiException(status=404, reason="Not Found"), "transient"),  # created later
    (ApiException(status=429, reason="Too Many Requests"), "transient"),
    (ApiException(status=500, reason="Internal Server Error"), "transient"),
    (ApiException(status=503, reason="Service Unavailable"), "transient"),
    (ConnectionRefusedError(111, "Connection refused"), "transient"),
    (ConnectionResetError(104, "Connection reset by peer"), "transient"),
    (TimeoutError("timed out"), "transient"),
    (TimeoutError("timed out"), "transient"),
    (urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out."), "transient"),  # type: ignore[arg-type]
    (max_retry(urllib3.exceptions.NewConnectionError(None, "refused")), "transient"),  # type: ignore[arg-type]
    (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()), "transient"),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "transient"),
    (max_retry(urllib3.exceptions.SSLError(ssl.SSLEOFError(8, "EOF occurred"))), "transient"),
    (VERIFY_FAILED, "permanent"),
    (WRONG_NAME, "permanent"),
    (max_retry(urllib3.exceptions.SSLError(VERIFY_FAILED)), "permanent"),
    (
        urllib3.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
        "permanent",
    ),
    (ValueError("a bug"), "bug"),
    (KubeBlocked("image missing"), "bug"),
]


@pytest.mark.parametrize(
    ("error", "kind"), TABLE, ids=[f"{type(e).__name__}-{k}" for e, k in TABLE]
)
def test_each_error_is_retried_or_stops_the_wait(error: Exception, kind: str) -> None:
    calls = []

    def probe() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return "answered"

    if kind == "transient":
        assert is_transient(error) and permanent_reason(error) is None
        assert wait_for("API", probe, timeout=5, sleep=lambda _: None) == "answered"
        return
    assert not is_transient(error)
    expected = ApiRejected if kind == "permanent" else type(error)
    with pytest.raises(expected) as raised:
        wait_for("API /version", probe, timeout=5, sleep=lambda _: None)
    assert len(calls) == 1  # stopped at once
    if kind == "permanent":
        assert "\n" not in str(raised.value)
        assert str(raised.value).startswith("API /version: ")


@pytest.mark.parametrize(
    ("status", "words"), [(401, "rejects the admin kubeconfig's credentials"), (403, "forbids")]
)
def test_auth_refusals_say_what_the_server_judged(status: int, words: str) -> None:
    assert words in str(permanent_reason(ApiException(status=status)))


# ---- a real TLS handshake against a local server ----
VERSION = {
    **{k: "" for k in ("buildDate", "compiler", "gitCommit", "gitTreeState", "goVersion")},
    **{"platform": "linux/amd64", "major": "1", "minor": "34", "gitVersion": "v1.34.0"},
}


def make_cert(directory: Path, name: str, cn: str) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for `cn`, valid for 127.0.0.1 and `cn`."""
    key, cert = directory / f"{name}.key", directory / f"{name}.crt"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", f"/CN={cn}"),
            *("-addext", f"subjectAltName=DNS:{cn},IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_api(tmp_path: Path):
    """An HTTPS server on 127.0.0.1 answering /version, with its certificate files."""
    cert, key = make_cert(tmp_path, "server", "kubesolo")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(VERSION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert, tmp_path
    server.shutdown()
    server.server_close()


def version_client(url: str, ca: Path, server_name: str | None = None) -> k8s.VersionApi:
    configuration = k8s.Configuration(host=url)
    configuration.ssl_ca_cert = str(ca)
    configuration.tls_server_name = server_name
    configuration.retries = False
    return k8s.VersionApi(k8s.ApiClient(configuration))


def test_the_right_ca_and_name_answer(tls_api: tuple[str, Path, Path]) -> None:
    """The control case: with the right trust the same server answers."""
    url, cert, _ = tls_api
    api = version_client(url, cert, "kubesolo")
    assert api.get_code(_request_timeout=REQUEST_TIMEOUT).git_version == "v1.34.0"


def test_a_certificate_from_another_ca_stops_the_wait_at_once(
    tls_api: tuple[str, Path, Path],
) -> None:
    """E.g. the previous boot's kubeconfig after KubeSolo regenerated its PKI."""
    url, _, directory = tls_api
    other_ca, _ = make_cert(directory, "other", "kubesolo")
    api = version_client(url, other_ca, "kubesolo")
    with pytest.raises(ApiRejected, match=r"^API /version: TLS verification .* failed"):
        wait_for("API /version", lambda: api.get_code(_request_timeout=REQUEST_TIMEOUT), 60)


def test_a_server_name_the_certificate_lacks_stops_the_wait_at_once(
    tls_api: tuple[str, Path, Path],
) -> None:
    url, cert, _ = tls_api
    api = version_client(url, cert, "not-the-node")
    with pytest.raises(ApiRejected, match="TLS verification"):
        wait_for("API /version", lambda: api.get_code(_request_timeout=REQUEST_TIMEOUT), 60)
