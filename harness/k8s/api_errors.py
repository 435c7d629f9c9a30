"""Which errors of an API call are worth another try while a node comes up,
which say no retry can help, and each error as one line.

Connection refused or reset, 5xx, 429 and timeouts are start-up noise. A 401 or
403, or a certificate that does not verify, means the harness's credentials or
trust do not fit this API server: retrying until the budget ends only hides it.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator, Mapping

import urllib3
from kubernetes.client.exceptions import ApiException
from urllib3.util.ssl_match_hostname import CertificateError as Urllib3CertificateError

from harness.errors import HarnessError

# What a poll may raise while a node comes up; anything else is a bug or a dead VM: no retry.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)

# API answers no retry changes: the server has judged the admin kubeconfig's credentials.
PERMANENT_STATUSES: Mapping[int, str] = {
    401: "the API server rejects the admin kubeconfig's credentials (401 Unauthorized)",
    403: "the API server forbids the admin kubeconfig's user (403 Forbidden)",
}
# How a TLS verification failure reads once urllib3 has wrapped it in an SSLError.
CERT_VERIFY_MARKERS = (
    "CERTIFICATE_VERIFY_FAILED",
    "certificate verify failed",
    "Hostname mismatch",
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: urllib3's `reason`, exception args, cause and context."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__]
        wrapped.extend(current.args)
        todo.extend(e for e in wrapped if isinstance(e, BaseException))


def permanent_reason(error: BaseException) -> str | None:
    """Why no retry can make this call succeed, or None when one might."""
    for cause in causes(error):
        if isinstance(cause, ApiException) and cause.status in PERMANENT_STATUSES:
            return PERMANENT_STATUSES[cause.status]
        if isinstance(cause, ssl.SSLCertVerificationError | Urllib3CertificateError):
            detail = getattr(cause, "verify_message", None) or first_line(cause)
            return f"TLS verification of the API server failed: {detail}"
        if isinstance(cause, ssl.SSLError | urllib3.exceptions.SSLError):
            text = first_line(cause)
            if any(marker in text for marker in CERT_VERIFY_MARKERS):
                return f"TLS verification of the API server failed: {text}"
    return None


def is_transient(error: BaseException) -> bool:
    """Worth another try. The harness's own errors never are: a timed-out guest command
    or a blocked pod does not get better by asking again."""
    return (
        isinstance(error, TRANSIENT_ERRORS)
        and not isinstance(error, HarnessError)
        and permanent_reason(error) is None
    )


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def one_line(error: BaseException | None) -> str:
    if isinstance(error, ApiException):
        return f"API {error.status} {error.reason}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
