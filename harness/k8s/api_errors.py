"""Which errors of an API call are worth another try while a node comes up,
and each error as one line."""

from __future__ import annotations

import http.client

import urllib3
from kubernetes.client.exceptions import ApiException

from harness.errors import HarnessError

# What a poll may raise while a node comes up; anything else is a bug or a dead VM: no retry.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ApiException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def is_transient(error: BaseException) -> bool:
    """Worth another try. The harness's own errors never are: a timed-out guest command
    or a blocked pod does not get better by asking again."""
    return isinstance(error, TRANSIENT_ERRORS) and not isinstance(error, HarnessError)


def one_line(error: BaseException | None) -> str:
    if isinstance(error, ApiException):
        return f"API {error.status} {error.reason}"
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
