"""Boot markers of a normal boot (docs/boot-flow.md "Debugging" > "Boot markers",
"Overview")."""

from __future__ import annotations

import itertools
import re

import pytest
from boot_guest import (
    ACCEPTED,
    OK_MARKER,
    standin_argv,
)

from harness import guest

pytestmark = pytest.mark.boot


def test_normal_boot_shows_every_stage_marker_in_order(scenario):
    """docs/boot-flow.md "Boot Markers" and "Overview": a normal boot prints the OK marker
    of each of the ten stages once, in the order of the overview, then the
    KubeSolo stand-in's accepted line, and no [ERROR] line."""
    vm = scenario("default")
    text = vm.console_text()
    done = [(m.group(1), m.end()) for m in OK_MARKER.finditer(text)]
    assert [name for name, _ in done] == list(guest.STAGES)
    accepted = ACCEPTED.search(text)
    assert accepted, "no '[kubesolo-standin] accepted:' line on the console"
    assert accepted.start() > done[-1][1], "KubeSolo started before the stage 90 marker"
    assert accepted.group(1).split() == standin_argv(vm)
    assert not re.search(guest.ERROR_MARKER, text)


def test_stages_start_and_complete_in_sequence(scenario):
    """docs/boot-flow.md "Overview": each stage starts only after the previous one
    completed (the stage timeline of the console)."""
    timeline = scenario("default").stage_timeline()
    assert [s.name for s in timeline] == list(guest.STAGES)
    assert all(s.ok for s in timeline), timeline
    for before, after in itertools.pairwise(timeline):
        # 10 ms of slack: the timeline rounds to milliseconds
        assert after.start >= before.start + before.duration - 0.01, (before, after)
