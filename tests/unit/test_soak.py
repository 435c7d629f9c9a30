"""`kubesolo-harness soak`: per-test failure counts from JUnit reports."""

from __future__ import annotations

from harness.commands.soak import aggregate, outcomes

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="tests.boot.test_a" name="test_ok" time="1.0"/>
<testcase classname="tests.boot.test_a" name="test_flaky" time="1.0">
  <failure message="boom">trace</failure></testcase>
<testcase classname="tests.boot.test_b" name="test_setup" time="1.0">
  <error message="setup failed">trace</error></testcase>
<testcase classname="tests.boot.test_b" name="test_skip" time="0.0">
  <skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_outcomes_of_a_junit_report():
    assert outcomes(REPORT) == {
        "tests.boot.test_a::test_ok": "passed",
        "tests.boot.test_a::test_flaky": "failed",
        "tests.boot.test_b::test_setup": "failed",
        "tests.boot.test_b::test_skip": "skipped",
    }


def test_failures_are_counted_per_test_over_runs():
    clean = {k: "passed" for k in outcomes(REPORT)}
    report = aggregate([outcomes(REPORT), clean, outcomes(REPORT)], [10.0, 11.0, 12.0])
    assert report.runs == 3 and report.tests == 4
    assert report.failures == {
        "tests.boot.test_a::test_flaky": 2,
        "tests.boot.test_b::test_setup": 2,
    }
    lines = report.lines()
    assert lines[0].startswith("soak: 3 runs of 4 tests, 4 failures (33.33% of test runs)")
    assert "| tests.boot.test_a::test_flaky | 2/3 | 67% |" in lines


def test_a_run_without_a_report_is_a_failure():
    report = aggregate([{}], [1.0])
    assert report.failures == {"<run: no report>": 1}
