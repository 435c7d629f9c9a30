"""Host ports of concurrent machines, and the accelerator probe
(docs/architecture.md "Pitfalls": KVM, Network)."""

from __future__ import annotations

import logging
import re
import socket
import time

import pytest

from harness.vm import accel

pytestmark = pytest.mark.boot


@pytest.mark.parametrize("index", range(20))
def test_concurrent_machines_get_their_own_forwards(machine_factory, index):
    """20 machines (two at a time under -n 2) each get loopback forwards that
    QEMU really bound, and no port is used twice."""
    vm = machine_factory(forwards=(8080, 6443))
    vm.start()
    usernet = vm.qmp("human-monitor-command", **{"command-line": "info usernet"})
    bound = {int(p) for p in re.findall(r"HOST_FORWARD\]\s+\d+\s+127\.0\.0\.1\s+(\d+)", usernet)}
    wanted = {vm.forward_port(8080), vm.forward_port(6443)}
    assert bound == wanted
    for port in wanted:
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass


def test_auto_accel_probes_once_and_says_why(kubesolo_image, tmp_path, monkeypatch, caplog):
    """--accel auto decides within 15 s with a reason, caches the verdict per
    host and says it once (in the harness's log). On hosts whose KVM hangs
    guests this is TCG."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="harness.vm.accel"):
        verdict = accel.resolve("auto", "qemu-system-x86_64", kubesolo_image.kernel)
        assert time.monotonic() - started < 15
        assert verdict.accel in ("kvm", "tcg") and verdict.reason
        if verdict.accel == "tcg":
            assert "KVM unusable" in verdict.reason
        again = accel.resolve("auto", "qemu-system-x86_64", kubesolo_image.kernel)
    assert again == verdict
    said = [r.getMessage() for r in caplog.records if r.name == "harness.vm.accel"]
    assert said == [f"[accel] {verdict.reason}"]
