"""Init as KubeSolo's supervisor (docs/boot-flow.md "Supervision"): a KubeSolo
that exits is started again with a back-off, one that keeps failing fast is
given up on with its last lines and the emergency shell (never a kernel
panic), orphans are reaped, and a poweroff stops KubeSolo and unmounts the
data partition before the kernel goes down. The stand-in fails on purpose
with the test flavour's boot parameter kubesolo.standin.fail=N."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from boot_guest import console_lines, standin_argv, wait_for_kubesolo
from promised import SPEC_BACKOFFS, SPEC_SUPERVISOR

from harness import guest
from harness.disk import ext4_qcow2
from harness.tools import run_tool
from harness.vm.console import find_warnings

pytestmark = pytest.mark.boot

FAST_EXIT_SECONDS = SPEC_SUPERVISOR["KUBESOLO_FAST_EXIT_SECONDS"]
MAX_FAST_FAILURES = SPEC_SUPERVISOR["KUBESOLO_MAX_FAST_FAILURES"]
BACKOFFS = list(SPEC_BACKOFFS[: MAX_FAST_FAILURES - 1])  # before starts 2 to 5
GIVE_UP_LIMIT = 240  # TCG: five starts and 30 s of back-off, with room
GAVE_UP = {"kubesolo-gave-up", "stage-error"}
PURPOSE = re.compile(r"^\[kubesolo-standin\] start (\d+) fails on purpose", re.M)


def restarts(vm) -> list[tuple[str, int]]:
    """(exit reason, back-off seconds) of each restart line on the console."""
    lines = [line for line in console_lines(vm) if "KubeSolo exited (" in line]
    line_form = r"\((.+?) after \d+s, fast failure (\d+) of (\d+)\): restarting it in (\d+)s$"
    found = [re.search(line_form, line) for line in lines]
    assert all(found), lines
    return [(m.group(1), int(m.group(4))) for m in found if m]


def raw_data(disk: Path, tmp_path: Path) -> Path:
    """The raw bytes of a qcow2 data disk, as the guest saw them."""
    raw = tmp_path / "data.raw"
    run_tool(["qemu-img", "convert", "-U", "-q", "-O", "raw", str(disk), str(raw)])
    return raw


def kubesolo_pid(vm) -> int:
    return int(vm.succeed(f"cat {guest.KUBESOLO_PID_FILE}").strip())


def test_a_kubesolo_that_fails_its_first_starts_is_restarted(machine_factory):
    """docs/boot-flow.md "Supervision": the stand-in exits 1 at its first 2 starts;
    init starts it again after 2 s, then 4 s, with one warning line each naming the
    exit status; the third start stays up as the node's main process, a child of
    PID 1, and nothing panics."""
    vm = machine_factory(kernel_args="kubesolo.standin.fail=2")
    vm.start()
    wait_for_kubesolo(vm)
    assert restarts(vm) == [("exit status 1", 2), ("exit status 1", 4)]
    assert [int(n) for n in PURPOSE.findall(vm.console_text())] == [1, 2]
    assert [p.name for p, _ in find_warnings(vm.console_text())] == ["kubesolo-restart"] * 2
    pid = kubesolo_pid(vm)
    status = vm.succeed(f"cat /proc/{pid}/status")
    assert re.search(r"^PPid:\s+1$", status, re.M), status
    argv = vm.succeed(f"tr '\\0' '\\n' < /proc/{pid}/cmdline").splitlines()
    assert argv[argv.index(guest.KUBESOLO_BIN) + 1 :] == standin_argv(vm)
    assert "Kernel panic" not in vm.console_text()


def test_a_kubesolo_that_always_fails_fast_is_given_up(machine_factory):
    """docs/boot-flow.md "Supervision": after 5 fast failures in a row (4 restarts,
    2 + 4 + 8 + 16 s apart), init gives up in one error line with KubeSolo's last
    lines, and opens the emergency shell: no kernel panic."""
    vm = machine_factory(kernel_args="kubesolo.standin.fail=always", allow_failures=GAVE_UP)
    vm.start()
    vm.wait_for_boot()
    vm.wait_for_console(guest.EMERGENCY_PROMPT, timeout=GIVE_UP_LIMIT)
    assert restarts(vm) == [("exit status 1", seconds) for seconds in BACKOFFS]
    text = vm.console_text().replace("\r", "")
    gave_up = re.search(guest.KUBESOLO_GAVE_UP + r".*\n((?:    \| .*\n)+)", text)
    assert gave_up, text[-3000:]
    assert int(gave_up.group(1)) == MAX_FAST_FAILURES
    assert f"each start ended within {FAST_EXIT_SECONDS}s" in gave_up.group(0)
    last_lines = gave_up.group(2).splitlines()
    assert (
        last_lines[-1]
        == "    | [kubesolo-standin] start 5 fails on purpose (kubesolo.standin.fail=always)"
    )
    assert "Kernel panic" not in text and "Attempted to kill init" not in text


def zombies_of(parent: str) -> str:
    """A guest command printing the status file of each zombie whose parent is `parent`."""
    return (
        'for s in /proc/[0-9]*/status; do awk \'/^State:/ { z = $2 == "Z" } '
        f"/^PPid:/ {{ p = $2 }} END {{ if (z && p == {parent}) print FILENAME }}' $s; done"
    )


def test_pid_1_reaps_every_orphan(machine_factory):
    """docs/boot-flow.md "Supervision": orphans are re-parented to PID 1, which reaps
    them: after 50 test-shell commands that each leave one, and 5 that the stand-in
    left at its start, no zombie has PID 1 as its parent."""
    vm = machine_factory(kernel_args="kubesolo.standin.orphans=5")
    vm.start()
    wait_for_kubesolo(vm)
    # the stand-in prints this after recording its argv, through init's logger
    vm.wait_for_console(re.escape("[kubesolo-standin] leaving 5 orphans"), timeout=30)
    # premises: an orphan's parent is PID 1 (no subreaper between), and the check
    # sees a zombie (one whose parent, exec'd into sleep, never waits)
    parent = vm.succeed(
        "( sleep 30 & echo $! > /tmp/orphan ); sleep 0.5; "
        "awk '/^PPid:/ { print $2 }' /proc/$(cat /tmp/orphan)/status"
    )
    assert parent.strip() == "1"
    keeper = vm.succeed("sh -c 'true & exec sleep 30' >/dev/null & echo $!").strip()
    vm.wait_until_succeeds(f'test -n "$({zombies_of(keeper)})"', timeout=30)
    for _ in range(50):
        vm.succeed("( true & )")
    vm.wait_until_succeeds(f'test -z "$({zombies_of("1")})"', timeout=30)


def test_a_poweroff_stops_kubesolo_and_unmounts_the_data_partition(machine_factory, tmp_path):
    """docs/boot-flow.md "Supervision": a poweroff from the test shell sends KubeSolo
    SIGTERM, stops every process, unmounts the data partition and syncs; QEMU ends,
    and the file system was unmounted (no needs_recovery) and is clean (`e2fsck -fn`)
    with the fsynced file in it."""
    disk = ext4_qcow2(tmp_path / "data.qcow2", "64M")
    vm = machine_factory(data_disk=disk)
    vm.start()
    wait_for_kubesolo(vm)
    vm.succeed(
        f"echo kept > {guest.DATA_MNT}/shutdown-marker && sync {guest.DATA_MNT}/shutdown-marker"
    )
    since = vm.console_cursor()
    vm.shutdown()
    shown = vm.console_text(since)
    assert f"{guest.INIT_PREFIX} [INFO] Shutting down (poweroff)" in shown
    assert "[kubesolo-standin] stopped (SIGTERM)" in shown
    assert f"{guest.INIT_PREFIX} [OK] File systems unmounted: poweroff" in shown
    assert "cannot unmount" not in shown
    raw = raw_data(disk, tmp_path)
    # a mounted ext4 has needs_recovery set until it is unmounted
    header = run_tool(["dumpe2fs", "-h", str(raw)])
    features = re.search(r"^Filesystem features:(.*)$", header, re.M)
    assert features and "needs_recovery" not in features.group(1), header
    check = subprocess.run(["e2fsck", "-fn", str(raw)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert run_tool(["debugfs", "-R", "cat /shutdown-marker", str(raw)]).strip() == "kept"


def test_the_power_button_shuts_the_node_down_cleanly(machine_factory):
    """docs/boot-flow.md "Supervision": QEMU's power button (ACPI) reaches acpid,
    whose poweroff takes the node down the same clean way."""
    vm = machine_factory()
    vm.start()
    wait_for_kubesolo(vm)
    assert vm.succeed("cat /sys/module/button/initstate /sys/module/evdev/initstate").split() == [
        "live",
        "live",
    ]
    since = vm.console_cursor()
    vm.shutdown(button=True)
    shown = vm.console_text(since)
    assert f"{guest.INIT_PREFIX} [INFO] Shutting down (poweroff)" in shown
    assert "[kubesolo-standin] stopped (SIGTERM)" in shown
    assert f"{guest.INIT_PREFIX} [OK] File systems unmounted: poweroff" in shown


def test_a_reboot_at_a_console_shell_goes_down_at_once(machine_factory):
    """docs/boot-flow.md "Supervision": while kubesolo.shell's console shell holds
    PID 1, the harness's reboot syncs and reboots at once (guest.REBOOT_COMMAND):
    the next boot reaches the shell again, with no shutdown of a KubeSolo that never
    started."""
    vm = machine_factory(kernel_args="kubesolo.shell")
    vm.start()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=240)
    since = vm.console_cursor()
    vm.reboot()
    vm.wait_for_console(guest.SHELL_PROMPT, timeout=240)
    assert vm.succeed(f"cat {guest.SHELL_MARK}").strip() == "kubesolo-shell"
    assert "Shutting down" not in vm.console_text(since)
