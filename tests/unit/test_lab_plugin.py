"""The hardware-in-the-loop plugin, in pytest runs of its own: labgrid's --lg-env
switches the suites to a board, qemu_only tests skip there with their reason
(and run without it), and a bad env file or xdist is refused in one line
before anything runs (docs/architecture.md "Hardware in the loop")."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "labgrid" / "x86-board.example.yaml"
TESTS = """
import pytest

@pytest.mark.qemu_only("hot-plugs the data disk through QMP")
def test_needs_qemu():
    pass

def test_anywhere():
    pass
"""


def test_qemu_only_tests_skip_on_a_board_with_their_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--lg-env", str(EXAMPLE), "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs QEMU: hot-plugs the data disk through QMP*"])


def test_qemu_only_tests_run_without_a_board(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_a_missing_env_file_is_one_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--lg-env", "nope.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --lg-env: labgrid env nope.yaml: no such file"])
    assert "Traceback" not in result.stderr.str()


def test_a_board_refuses_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--lg-env", str(EXAMPLE), "-n", "2"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*one board serves one test at a time: run with -n 0*"])
