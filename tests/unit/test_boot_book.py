"""Which console bytes belong to which boot (harness.vm.boots): each ended
boot is kept once, whatever ends it, a console replaced on a restart keeps
its boots, and a snapshot's replayed boot is never this target's."""

from __future__ import annotations

from pathlib import Path

from harness import guest
from harness.vm.boots import BootBook
from harness.vm.console import Console


def boot_lines(*stages: str) -> bytes:
    lines = []
    for stage in stages:
        lines.append(f"{guest.INIT_PREFIX} [INFO] Stage {stage} starting\n")
        lines.append(f"{guest.INIT_PREFIX} [OK] Stage {stage} complete\n")
    return "".join(lines).encode()


def console_with(tmp_path: Path, data: bytes) -> Console:
    console = Console(tmp_path / "console.log")
    console.preload(data, [(len(data), 0.0)])
    return console


def feed(console: Console, data: bytes) -> Console:
    """`console` with `data` appended, as a restarted QEMU's console holds it."""
    old, arrivals = console.snapshot()
    fresh = console.reopened()
    fresh._buf = bytearray(old + data)
    fresh._arrivals = [*arrivals, (len(old) + len(data), 0.0)]
    return fresh


def test_a_reboot_keeps_the_ended_boot_and_counts_the_shell_greeting(tmp_path):
    console = console_with(tmp_path, b"")
    book = BootBook()
    book.power_on(console)
    assert book.shell_boots == 1
    console = feed(console, boot_lines("00-early-mount.sh", "10-parse-cmdline.sh"))
    book.next_boot(console)
    assert book.shell_boots == 2
    assert book.cursor == console.cursor()
    console = feed(console, boot_lines("00-early-mount.sh"))
    boots = book.timelines(console)
    assert [[s.name for s in boot] for boot in boots] == [
        ["00-early-mount.sh", "10-parse-cmdline.sh"],
        ["00-early-mount.sh"],
    ]


def test_a_boot_ended_twice_is_kept_once(tmp_path):
    """A board's lines close (end), then power comes back (power_on ends it
    again, on the reopened console): one boot, not two."""
    console = console_with(tmp_path, b"")
    book = BootBook()
    book.power_on(console)
    console = feed(console, boot_lines("00-early-mount.sh"))
    book.end(console)
    console = console.reopened()
    book.power_on(console)
    assert book.shell_boots == 1
    console = feed(console, boot_lines("00-early-mount.sh", "10-parse-cmdline.sh"))
    assert [len(boot) for boot in book.timelines(console)] == [1, 2]


def test_a_boot_that_printed_no_stage_is_not_kept(tmp_path):
    console = console_with(tmp_path, b"")
    book = BootBook()
    book.power_on(console)
    console = feed(console, b"SeaBIOS\n")
    book.next_boot(console)
    assert book.timelines(console) == []


def test_a_snapshots_boot_is_never_this_targets(tmp_path):
    """Restore: the snapshot's console is replayed and disowned; waits read
    it (cursor 0), but it is neither kept nor current, even after a reboot."""
    console = console_with(tmp_path, boot_lines(*guest.STAGES))
    book = BootBook()
    book.disown(0)
    book.power_on(console)  # the restored QEMU's start
    book.disown(0)
    assert book.cursor == 0
    assert book.timelines(console) == []
    book.next_boot(console)
    console = feed(console, boot_lines("00-early-mount.sh"))
    assert [[s.name for s in boot] for boot in book.timelines(console)] == [["00-early-mount.sh"]]
