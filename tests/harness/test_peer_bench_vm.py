"""The bench's labgrid column on a real QEMU (docs/architecture.md "Speed")."""

from __future__ import annotations

import pytest

from harness.commands import peer_bench

pytestmark = [pytest.mark.boot, pytest.mark.qemu_only]

OUTPUT = 64 * 64  # bytes: 64 lines, enough to prove the command, quick over serial


def test_labgrid_boots_the_image_and_its_shell_driver_runs_our_commands(kubesolo_image):
    """docs/architecture.md "Speed": labgrid's QEMUDriver boots the image to the
    stage-90 marker; its ShellDriver logs in at the kubesolo.shell prompt and
    runs the bench's round trip and bulk-output commands, whose output it
    checks line by line."""
    figures: dict[str, float] = {}
    peer_bench.bench_labgrid(
        kubesolo_image, "tcg", lambda name, s: figures.setdefault(name, s), OUTPUT
    )
    names = (peer_bench.BOOT, peer_bench.ROUND_TRIP, peer_bench.MIB_THROUGH_SHELL)
    assert set(figures) == set(names)
    assert all(figures[name] > 0 for name in names)
