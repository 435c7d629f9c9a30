"""init's supervisor of KubeSolo (build/rootfs/usr/lib/kubesolo-os/supervisor.sh),
run on the host under busybox sh: the numbers docs/boot-flow.md "Supervision"
promises, the back-off, and how an exit is named."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from promised_values import REPO, P

SUPERVISOR = REPO / "build/rootfs/usr/lib/kubesolo-os/supervisor.sh"
FUNCTIONS = REPO / "build/rootfs/usr/lib/kubesolo-os/functions.sh"


def supervisor_sh(script: str) -> str:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox not found: install busybox-static (README test command does)")
    done = subprocess.run(
        [busybox, "sh", "-c", f". {FUNCTIONS}; . {SUPERVISOR}; {script}"],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "KUBESOLO_RUN": "/nonexistent"},
    )
    return done.stdout


def test_the_numbers_are_the_promised_ones():
    """docs/boot-flow.md "Supervision": every limit, exactly."""
    text = SUPERVISOR.read_text()
    found = {name: int(value) for name, value in re.findall(r"^([A-Z_]+)=(\d+)$", text, re.M)}
    assert found == P.SPEC_SUPERVISOR


def test_the_back_off_doubles_up_to_its_cap():
    out = supervisor_sh("for n in 1 2 3 4 5 6; do backoff_seconds $n; done")
    assert tuple(int(word) for word in out.split()) == P.SPEC_BACKOFFS


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (0, "exit status 0"),
        (1, "exit status 1"),
        (137, "signal 9 (KILL)"),
        (143, "signal 15 (TERM)"),
    ],
)
def test_an_exit_is_named(status, reason):
    assert supervisor_sh(f"exit_reason {status}").strip() == reason
