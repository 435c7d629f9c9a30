"""Which console bytes belong to which boot of a target (docs/architecture.md
"Boot-time gate"). A target's console keeps every byte across power cycles
(Console.reopened), so a boot is named by the offset where it starts: waits
read from there, and the boot's timeline is kept once when the boot ends,
whether by a reboot, a reset, a power cut or a restart of its QEMU."""

from __future__ import annotations

from harness.boottime.timeline import Stage, stage_timeline
from harness.vm.console import Console


class BootBook:
    """The boots of one target: the current one's start, and the timelines of
    those that ended. A boot that printed no stage is not a boot to keep."""

    def __init__(self) -> None:
        self.cursor = 0  # console offset where the current boot starts
        self.shell_boots = 0  # READY lines the test shell should have sent by now
        self._ended: list[list[Stage]] = []
        self._kept: int | None = None  # the start of the last boot kept or disowned

    def current(self, console: Console) -> list[Stage]:
        """The current boot's stages."""
        data, arrivals = console.snapshot()
        return stage_timeline(data, arrivals, self.cursor)

    def end(self, console: Console) -> None:
        """The current boot ends here: keep its timeline, once."""
        if self._kept != self.cursor:
            timeline = self.current(console)
            if timeline:
                self._ended.append(timeline)
                self._kept = self.cursor

    def power_on(self, console: Console) -> None:
        """A boot from power-on (a fresh test shell): from the console's end."""
        self.end(console)
        self.cursor = console.cursor()
        self.shell_boots = 1

    def next_boot(self, console: Console) -> None:
        """A reboot or reset: the running test shell will greet once more."""
        self.end(console)
        self.cursor = console.cursor()
        self.shell_boots += 1

    def disown(self, cursor: int) -> None:
        """The boot starting at `cursor` is not this target's (a snapshot's,
        replayed into its console): never kept, never current."""
        self.cursor = cursor
        self._kept = cursor

    def timelines(self, console: Console) -> list[list[Stage]]:
        """Every boot so far, the current one last."""
        current = [] if self._kept == self.cursor else self.current(console)
        return [*self._ended, *([current] if current else [])]
