"""Waits: transient errors retried, anything else stops at once, and running out of time
is a HarnessTimeout."""

from __future__ import annotations

import logging

import pytest
from kube_fakes import FakeClock, no_sleep
from kubernetes.client.exceptions import ApiException

from harness import errors
from harness.k8s.errors import KubeBlocked, KubeError, KubeWaitTimeout, PreloadError
from harness.k8s.waits import Budget, wait_for


class TestWaits:
    def test_returns_the_first_real_result(self) -> None:
        results = iter([None, None, "node"])
        assert wait_for("node", lambda: next(results), timeout=5, sleep=no_sleep) == "node"

    def test_transient_errors_are_retried(self) -> None:
        attempts = iter([ApiException(status=503), ConnectionRefusedError(), "up"])

        def probe() -> str:
            item = next(attempts)
            if isinstance(item, BaseException):
                raise item
            return str(item)

        assert wait_for("API", probe, timeout=5, sleep=no_sleep) == "up"

    @pytest.mark.parametrize("error", [KubeBlocked("image missing"), ValueError("bug")])
    def test_blockers_and_bugs_stop_at_once(self, error: Exception) -> None:
        calls = []

        def probe() -> None:
            calls.append(1)
            raise error

        with pytest.raises(type(error)):
            wait_for("x", probe, timeout=5, sleep=no_sleep)
        assert len(calls) == 1

    def test_timeout_names_the_wait_and_the_last_error(self) -> None:
        def probe() -> None:
            raise ApiException(status=503, reason="Service Unavailable")

        with pytest.raises(
            KubeWaitTimeout,
            match=r"node Ready: not reached within 0s "
            r"\(last error: API 503 Service Unavailable\)",
        ):
            wait_for("node Ready", probe, timeout=0.05, sleep=no_sleep)

    def test_timeout_without_error(self) -> None:
        with pytest.raises(KubeWaitTimeout, match=r"^rollout: not reached within 0s$"):
            wait_for("rollout", lambda: None, timeout=0.05, sleep=no_sleep)

    def test_budget_is_shared_and_never_zero(self) -> None:
        clock = FakeClock()
        budget = Budget(100, clock=clock)
        clock.now += 40
        assert budget.remaining() == 60
        clock.now += 500
        assert budget.remaining() == 1.0


# ---- the error families (harness.errors) ----
def test_a_kubernetes_wait_that_runs_out_raises_harness_timeout() -> None:
    """A test can catch every ran-out wait alike: console, shell, boot or Kubernetes."""
    with pytest.raises(errors.HarnessTimeout) as raised:
        wait_for("node Ready", lambda: None, timeout=0.01, interval=0.01)
    assert isinstance(raised.value, KubeWaitTimeout)
    assert isinstance(raised.value, TimeoutError)


def test_kubernetes_errors_belong_to_the_harness_families() -> None:
    assert issubclass(KubeError, errors.HarnessError)
    assert issubclass(KubeWaitTimeout, errors.HarnessTimeout)
    assert issubclass(KubeBlocked, errors.GuestAssertion)  # the node misbehaved
    assert issubclass(PreloadError, errors.UserError)  # what the user passed is wrong


def test_a_harness_timeout_inside_a_probe_is_not_retried() -> None:
    """HarnessTimeout is an OSError (TimeoutError) too: it must not pass for a transient
    network error, or a dead test shell would be asked again until the budget ends."""
    calls = []

    def probe() -> None:
        calls.append(1)
        raise KubeWaitTimeout("inner wait ran out")

    with pytest.raises(KubeWaitTimeout, match="inner wait"):
        wait_for("outer", probe, timeout=5, sleep=no_sleep)
    assert calls == [1]


def test_a_wait_is_a_logged_step(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="harness.k8s")
    wait_for("rollout of a/b", lambda: "done", timeout=5, sleep=no_sleep)
    messages = [r.getMessage() for r in caplog.records if r.name == "harness.k8s"]
    assert messages[0] == "wait for rollout of a/b ..."
    assert messages[-1].startswith("wait for rollout of a/b: done in ")
