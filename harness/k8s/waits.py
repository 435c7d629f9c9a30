"""Polling with a budget: `wait_for` retries what start-up makes transient and
stops at once on anything else; `Budget` shares one deadline between waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_delay,
    wait_exponential,
)

from harness.k8s.api_errors import is_transient, one_line, permanent_reason
from harness.k8s.errors import ApiRejected, KubeWaitTimeout
from harness.log import logger, step

log = logger("k8s")
T = TypeVar("T")


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    timeout: float,
    interval: float = 3.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Poll `probe` until it returns something other than None; retry transient errors.

    Any other error (`KubeBlocked`, a bug) stops the wait at once, and so does an API
    error no retry can fix (ApiRejected, with the reason); running out of time raises
    KubeWaitTimeout, a HarnessTimeout.
    """

    def attempt() -> T | None:
        try:
            return probe()
        except Exception as error:
            reason = permanent_reason(error)
            if reason:
                raise ApiRejected(f"{what}: {reason}") from error
            raise

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_exponential(multiplier=0.25, max=interval),
        retry=retry_if_result(lambda r: r is None) | retry_if_exception(is_transient),
        sleep=sleep,
    )
    with step(log, f"wait for {what}"):
        try:
            result = retrying(attempt)
        except RetryError as error:
            last = error.last_attempt
            cause = f" (last error: {one_line(last.exception())})" if last.failed else ""
            raise KubeWaitTimeout(f"{what}: not reached within {timeout:.0f}s{cause}") from None
        if result is None:  # tenacity only returns a result the retry rule accepted
            raise KubeWaitTimeout(f"{what}: no result")
        return result


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
