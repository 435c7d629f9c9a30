"""Programs on the data partition never shadow the OS's (docs/boot-flow.md
"Node configuration is data"): whoever can write KSOLODATA puts
`usr-local/bin/modprobe`, `sysctl`, `iptables` and `mount` there; stages 30
and 40, the test shell and KubeSolo still run the image's own."""

from __future__ import annotations

import pytest
from boot_guest import preseeded_data_disk, wait_for_kubesolo

from harness import guest

pytestmark = pytest.mark.boot

PLANTED = ("modprobe", "sysctl", "iptables", "mount")
OS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin"


def planted(name: str) -> str:
    """A program that leaves a mark in /run, then runs the image's own."""
    return f'#!/bin/sh\necho "$0 $*" >> /run/planted-{name}\nexec /bin/busybox {name} "$@"\n'


def test_planted_programs_on_the_data_partition_never_run(machine_factory, tmp_path):
    """docs/boot-flow.md "Node configuration is data": PID 1, the stages,
    KubeSolo and the test shell have the OS's directories first on PATH; a
    planted program is never what they run."""
    files = {f"usr-local/bin/{name}": planted(name) for name in PLANTED}
    disk = preseeded_data_disk(tmp_path, files, executable=frozenset(files))
    vm = machine_factory(data_disk=disk)
    vm.start()
    wait_for_kubesolo(vm)
    vm.succeed("test -x /usr/local/bin/modprobe")  # the planted files are there
    for name in PLANTED:
        found = vm.succeed(f"command -v {name}").strip()
        assert not found.startswith("/usr/local/"), found
        vm.succeed(f"{name} --help >/dev/null 2>&1 || true")  # the shell's lookup, run
    assert vm.succeed("ls /run/planted-* 2>/dev/null || echo none").strip() == "none"
    # KubeSolo (the stand-in) inherits init's PATH (init's own /proc/1/environ
    # is /init's, from before init set it)
    command = f"tr '\\0' '\\n' < {guest.KUBESOLO_PROC}/environ | grep ^PATH="
    assert vm.succeed(command).strip() == f"PATH={OS_PATH}"
    assert vm.succeed("echo $PATH").strip() == OS_PATH
