"""The test flavour is the release image plus one layer (docs/architecture.md
"Release image"): the test shell's files (build/flavours/test) and a marker
listing them, laid last over the very files a release image holds. The layer
only adds: one of its files that would replace a release file is refused at
build time, and a test proves it on the two built images."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build import cpio
from harness.errors import UserError

if TYPE_CHECKING:
    from harness.build.rootfs import Rootfs

LAYER_DIR = Path("flavours/test")  # under build/
# The marker: its presence makes an image the test flavour (init's
# is_release_image); it lists every path the layer added, itself last.
MARKER = "usr/lib/kubesolo-os/test-layer"


def add_test_layer(rootfs: Rootfs, build_dir: Path) -> list[str]:
    """Lay the test layer over `rootfs`; the paths it added, in order."""
    root = build_dir / LAYER_DIR
    added = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in rootfs:
            if path.is_dir() and stat.S_ISDIR(rootfs.entries[rel].mode):
                continue  # a directory the release has: the layer adds into it
            raise UserError(
                f"the test layer's {rel} would replace the release image's: the layer only adds"
            )
        rootfs.add_path(rel, path)
        added.append(rel)
    added.append(MARKER)
    rootfs.add(cpio.Entry.file(MARKER, "".join(f"{p}\n" for p in added).encode()))
    return added


def layer_paths(marker_text: str) -> list[str]:
    """The paths a test image's marker lists."""
    return [line for line in marker_text.splitlines() if line]
