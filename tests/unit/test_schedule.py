"""How a parallel run spends its workers (docs/architecture.md "Parallel
runs"): `-n auto` is one worker more than the usable CPUs unless xdist's own
variable says otherwise, and the modules and classes that hold a test marked
`long` are handed out first, under this repository's own xdist options."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

from harness.pytest import schedule

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[2]
# collected in this order; handed out: the long one first, then the larger one
MODULES = {
    "test_a_big": "def test_1():\n    pass\n\ndef test_2():\n    pass\n\ndef test_3():\n    pass\n",
    "test_b_mid": "def test_1():\n    pass\n\ndef test_2():\n    pass\n",
    "test_c_long": "import pytest\n\n@pytest.mark.long\ndef test_1():\n    pass\n",
}


def project_addopts() -> list[str]:
    """The xdist options of pyproject.toml, which a pytester run does not read."""
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return shlex.split(options["addopts"])


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 3), (16, 17)])
def test_auto_is_one_worker_more_than_the_cpus(cpus: int, workers: int) -> None:
    assert schedule.auto_workers(cpus) == workers


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        ("tests/a.py::test_x", "tests/a.py"),
        ("tests/a.py::test_x[p-1]", "tests/a.py"),
        ("tests/a.py::TestC::test_x", "tests/a.py::TestC"),
    ],
)
def test_a_work_unit_is_the_module_or_the_class(nodeid: str, unit: str) -> None:
    assert schedule.work_unit(nodeid) == unit


def test_units_with_a_long_item_go_first_then_the_larger_ones() -> None:
    items = ["a1", "b1", "a2", "C1", "d1", "d2", "d3"]  # unit: the letter; long: upper case

    def order(items: list[str]) -> list[str]:
        return schedule.hand_out_order(items, lambda i: i[0].lower(), lambda i: i.isupper())

    assert order(items) == ["C1", "d1", "d2", "d3", "a1", "a2", "b1"]
    assert order(["b1", "a1"]) == ["b1", "a1"], "equal units keep their order"
    assert order([]) == []


def test_our_auto_hook_is_called_before_xdists(pytestconfig: pytest.Config) -> None:
    implementations = pytestconfig.pluginmanager.hook.pytest_xdist_auto_num_workers
    assert implementations.get_hookimpls()[-1].plugin is schedule  # the last is called first


def test_a_run_hands_out_the_long_module_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**MODULES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "1", "-v", "--strict-markers", *project_addopts()
    )
    result.assert_outcomes(passed=6)
    ran = re.findall(r"PASSED (test_\w+)\.py::", result.stdout.str())
    assert ran == ["test_c_long"] + ["test_a_big"] * 3 + ["test_b_mid"] * 2, ran


def test_without_workers_the_collection_order_stays(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**MODULES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    modules = [line.split(".py::")[0] for line in result.outlines if ".py::" in line]
    assert modules == ["test_a_big"] * 3 + ["test_b_mid"] * 2 + ["test_c_long"]


def test_auto_starts_one_worker_more_than_the_usable_cpus(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(schedule.WORKERS_ENV, raising=False)
    pytester.makepyfile(**MODULES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto")
    result.stdout.fnmatch_lines([f"created: {schedule.usable_cpus() + 1}/*workers"])
    result.assert_outcomes(passed=6)


def test_xdists_variable_still_sets_the_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(schedule.WORKERS_ENV, "1")
    pytester.makepyfile(**MODULES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "auto")
    result.stdout.fnmatch_lines(["created: 1/1 worker"])
    result.assert_outcomes(passed=6)
