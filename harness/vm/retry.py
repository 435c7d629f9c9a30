"""One way to wait by polling (the NixOS driver's `retry`): every
`wait_until_*` of a target is built on it, and so can a test's own wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from harness.errors import HarnessTimeout

T = TypeVar("T")
PAUSE = 0.5  # seconds between tries: a test-shell command costs about 10 ms under TCG


def retry(attempt: Callable[[bool], T | None], timeout: float, pause: float = PAUSE) -> T:
    """The first result of `attempt` that is not None, trying until `timeout`
    seconds have passed. The try at the deadline is told it is the last
    (`attempt(True)`), so that it can raise an error saying what it last saw;
    if it returns None instead, HarnessTimeout says how long was waited."""
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        result = attempt(last_try)
        if result is not None:
            return result
        if last_try:
            raise HarnessTimeout(f"nothing within {timeout:.0f}s")
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
