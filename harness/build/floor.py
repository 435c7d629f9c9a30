"""The floor of a boot: an initramfs whose /init only prints a marker and
powers off. Booted by the same kernel on the same QEMU command line as the
image, it measures what no change to the OS can save (the bench reports
each boot figure as a ratio to it, measured in the same run)."""

from __future__ import annotations

import gzip
from pathlib import Path

from harness.build import cpio
from harness.errors import UserError

FLOOR_MARKER = "kubesolo-bench: floor /init ran"
BUSYBOX = "bin/busybox"
FLOOR_INIT = f"""#!/{BUSYBOX} sh
/{BUSYBOX} echo '{FLOOR_MARKER}'
/{BUSYBOX} poweroff -f
"""


def busybox_of(initramfs: Path) -> bytes:
    """The image's own static busybox, read from its initramfs (gzip'd or not)."""
    data = initramfs.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    for entry in cpio.parse(data):
        if entry.path == BUSYBOX:
            return entry.data
    raise UserError(f"{initramfs}: no {BUSYBOX} in it, so no floor initramfs can be made")


def floor_archive(busybox: bytes) -> bytes:
    """The floor initramfs, uncompressed: nothing to unpack but /init."""
    return cpio.archive(
        [
            cpio.Entry.directory("bin"),
            cpio.Entry.file(BUSYBOX, busybox, 0o755),
            cpio.Entry.directory("dev"),
            cpio.Entry.char_device("dev/console", 5, 1),
            cpio.Entry.file("init", FLOOR_INIT.encode(), 0o755),
        ]
    )


def write_floor_initramfs(image_initramfs: Path, out: Path) -> Path:
    out.write_bytes(floor_archive(busybox_of(image_initramfs)))
    return out
