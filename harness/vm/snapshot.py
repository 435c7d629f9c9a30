"""A booted machine saved to files, to be restored by any worker of a run in
well under a second instead of booted again (docs/architecture.md
"Snapshots"). What a restore needs, beside QEMU's migration stream (the
devices) and the guest's RAM (a sparse file, mapped copy-on-write): the
data disk as it was (frozen; each restore writes to its own overlay on
it), the console so far (the boot's messages stay readable), and the test
shell's boot id (its READY line came before the snapshot)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE = "state"  # QEMU's migration stream: the devices, without the RAM
RAM = "ram"  # the guest's RAM, a sparse file
DISK = "disk.qcow2"  # the data disk when the snapshot was taken
CONSOLE = "console.log"
META = "meta.json"  # written last: a snapshot without it is incomplete
FORMAT = 2  # bump when what a snapshot holds changes


def snapshot_key(image_id: str, settings: dict[str, Any], extra: str = "") -> str:
    """The name of the booted state of `settings` (MachineConfig fields) on one
    image; `extra` names what the settings cannot (a preseeded disk's files)."""
    canonical = json.dumps(
        {"format": FORMAT, "image": image_id, "settings": settings, "extra": extra},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Snapshot:
    directory: Path

    @property
    def state(self) -> Path:
        return self.directory / STATE

    @property
    def ram(self) -> Path:
        return self.directory / RAM

    @property
    def disk(self) -> Path:
        return self.directory / DISK

    @property
    def console(self) -> Path:
        return self.directory / CONSOLE

    @property
    def complete(self) -> bool:
        return (self.directory / META).is_file()

    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.directory / META).read_text())
        return data

    def write_meta(self, boot_id: str, arrivals: list[tuple[int, float]], has_disk: bool) -> None:
        """Arrival times are kept relative to the snapshot, so that a restore's
        console shows the boot as having ended when the restore began."""
        now = time.monotonic()
        meta = {
            "format": FORMAT,
            "boot_id": boot_id,
            "arrivals": [(end, round(at - now, 6)) for end, at in arrivals],
            "has_disk": has_disk,
        }
        partial = self.directory / f"{META}.part"
        partial.write_text(json.dumps(meta) + "\n")
        os.replace(partial, self.directory / META)  # whole or absent


def memfd_of(pid: int, name: str) -> Path:
    """The /proc path of a process's memfd called `name` (QEMU's guest RAM)."""
    fds = Path(f"/proc/{pid}/fd")
    for fd in sorted(fds.iterdir(), key=lambda p: int(p.name)):
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith(f"/{name} "):  # "/memfd:NAME (deleted)"
            return fd
    raise FileNotFoundError(f"process {pid} has no memfd {name}")
