"""The Machine API end to end on a real guest (docs/architecture.md "The Machine API")."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from harness import guest
from harness.vm.console import Console

READER_AWAY = 5  # seconds the console's reader sleeps at the start of a boot
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d{6}\] ")

pytestmark = pytest.mark.boot


def test_api_walk_through(machine_factory):
    """The API walk-through: stage waits, uname, boot id across a clean reboot, a
    synced file across a hard reset, and a page served in the guest fetched through
    a forwarded port. With --log-cli-level=INFO each action logs its start and end."""
    vm = machine_factory()
    host_port = vm.forward_port(8080)
    vm.start()
    vm.wait_for_stage("50-network.sh")
    vm.wait_for_boot()
    assert vm.succeed("uname -r").strip().endswith("-amd64")

    first_boot = vm.succeed("cat /proc/sys/kernel/random/boot_id").strip()
    vm.reboot()
    vm.wait_for_boot()
    second_boot = vm.succeed("cat /proc/sys/kernel/random/boot_id").strip()
    assert second_boot != first_boot

    proof = f"{guest.KUBESOLO_PATH}/reset-proof"
    vm.succeed(f"echo survives > {proof} && sync")
    vm.hard_reset()
    vm.wait_for_stage("20-persistent-mount.sh")
    vm.wait_for_boot()
    assert vm.succeed(f"cat {proof}") == "survives\n"

    vm.succeed("mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html")
    vm.succeed("httpd -p 8080 -h /tmp/www")
    with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/", timeout=30) as page:
        assert page.read() == b"hello-from-guest\n"


def test_forward_added_after_start(machine):
    """forward_port works on a running machine too (QMP hostfwd_add)."""
    machine.succeed(
        "mkdir -p /tmp/www && echo late > /tmp/www/index.html && httpd -p 8081 -h /tmp/www"
    )
    port = machine.forward_port(8081)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
        assert page.read() == b"late\n"


def test_the_console_loses_no_byte_while_its_reader_stalls(machine_factory, monkeypatch):
    """docs/architecture.md "Console": with the harness's reader away for the
    first seconds of a boot, as on a loaded host, every kernel line the
    console shows is one the guest's kernel logged, byte for byte."""
    pump = Console._pump
    monkeypatch.setattr(Console, "_pump", lambda self: (time.sleep(READER_AWAY), pump(self)))
    vm = machine_factory()
    vm.start()
    vm.wait_for_boot()
    logged = set(vm.succeed("dmesg").splitlines())
    shown = [line for line in vm.console_text().replace("\r", "").splitlines()
             if KERNEL_LINE.match(line)]  # fmt: skip
    assert len(shown) > 50
    assert [line for line in shown if line not in logged] == []
