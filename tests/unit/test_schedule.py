"""How a parallel run spends its workers (docs/architecture.md "Parallel
runs"): `-n auto` is one worker more than the usable CPUs unless xdist's own
variable says otherwise, and tests marked `long` are collected first."""

from __future__ import annotations

import pytest

from harness.pytest import schedule

pytest_plugins = ["pytester"]

TESTS = """
import pytest

def test_a():
    pass

@pytest.mark.long
def test_b_long():
    pass

def test_c():
    pass

@pytest.mark.long
class TestD:
    def test_d1(self):
        pass

    def test_d2(self):
        pass
"""


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 3), (16, 17), (0, 2)])
def test_auto_is_one_worker_more_than_the_cpus(cpus: int, workers: int) -> None:
    assert schedule.auto_workers(cpus) == workers


def test_long_first_keeps_each_groups_order() -> None:
    items = ["a", "B", "c", "D", "e"]
    assert schedule.long_first(items, str.isupper) == ["B", "D", "a", "c", "e"]
    assert schedule.long_first(items, lambda _: False) == items
    assert schedule.long_first([], str.isupper) == []


def test_the_long_marked_tests_are_collected_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    names = [line.split("::", 1)[1] for line in result.outlines if "::" in line]
    assert names == ["test_b_long", "TestD::test_d1", "TestD::test_d2", "test_a", "test_c"]


def test_the_long_marker_is_registered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(
        passed=5
    )


def test_auto_starts_one_worker_more_than_the_usable_cpus(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(schedule.WORKERS_ENV, raising=False)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto")
    result.stdout.fnmatch_lines([f"created: {schedule.usable_cpus() + 1}/*workers"])
    result.assert_outcomes(passed=5)


def test_xdists_variable_still_sets_the_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(schedule.WORKERS_ENV, "1")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto")
    result.stdout.fnmatch_lines(["created: 1/1 worker"])
    result.assert_outcomes(passed=5)
