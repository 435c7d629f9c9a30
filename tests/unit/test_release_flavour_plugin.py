"""--flavour release in pytest runs of its own (docs/architecture.md "Release
image"): tests that boot machines skip unless marked console_only, tests
that boot nothing run, and a bad flavour is one line."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.fixture
def machine_factory():
    return None  # stands in for the plugin's: only its name matters here

def test_needs_the_test_shell(machine_factory):
    pass

@pytest.mark.console_only
def test_through_the_console(machine_factory):
    pass

def test_boots_nothing():
    pass
"""


def test_on_the_release_image_only_console_only_tests_boot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--flavour", "release", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs the test shell, which only the test flavour has*"])


def test_on_the_test_image_everything_runs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=3)
