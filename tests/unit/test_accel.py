"""The accelerator decision."""

import pytest

from harness.errors import UserError
from harness.vm.accel import Verdict, decide


@pytest.mark.parametrize(
    ("requested", "usable", "expected"),
    [
        ("tcg", None, "tcg"),
        ("kvm", None, "kvm"),
        ("auto", True, "kvm"),
        ("auto", False, "tcg"),
    ],
)
def test_decision_table(requested, usable, expected):
    assert decide(requested, usable, "guest hung").accel == expected


def test_fallback_says_why():
    verdict = decide("auto", False, "a kernel under KVM printed nothing within 8s")
    assert verdict == Verdict(
        "tcg", "KVM unusable (a kernel under KVM printed nothing within 8s): using TCG"
    )


def test_unknown_request_is_refused():
    with pytest.raises(UserError, match="unknown accel"):
        decide("hvf", None)
