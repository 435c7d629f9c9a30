"""The hardware-in-the-loop plugin, in pytest runs of its own: labgrid's --lg-env
switches the suites to a board, qemu_only tests skip there with their reason
(and run without it), and a bad env file or xdist is refused in one line
before anything runs (docs/architecture.md "Hardware in the loop")."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

EXAMPLE = Path(__file__).resolve().parents[2] / "fixtures" / "labgrid" / "x86-board.example.yaml"
ONE_UART = EXAMPLE.parent / "qemu-board-1uart.yaml"
TESTS = """
import pytest

@pytest.mark.qemu_only("hot-plugs the data disk through QMP")
def test_needs_qemu():
    pass

@pytest.mark.console_shell
def test_types_at_the_emergency_shell():
    pass

def test_anywhere():
    pass
"""


def test_qemu_only_tests_skip_on_a_board_with_their_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--lg-env", str(EXAMPLE), "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs QEMU: hot-plugs the data disk through QMP*"])


def test_console_shell_tests_skip_where_the_test_shell_shares_the_console(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--lg-env", str(ONE_UART), "-rs"
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*types at a shell on the console, which this board's*"])


def test_qemu_only_tests_run_without_a_board(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


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
