"""`kubesolo-harness dev --watch`: when a file under build/ changes, rebuild
(the fast overlay when it can carry the change, a full build otherwise) and
boot the dev VM into it on the same data disk, timing edit -> stage 90."""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build.builder import BuildRequest, build
from harness.build.overlay import overlay_can_carry, overlay_image
from harness.build.rootfs import BUILD_DIR
from harness.errors import HarnessError

if TYPE_CHECKING:
    from harness.dev.server import DevServer

POLL_SECONDS = 0.2


# Editors' temporary and backup files: never a change of the OS.
EDITOR_FILES = re.compile(r"(^\.#|^#.*#$|~$|\.sw[a-p]$|^4913$|\.tmp$)")


def mtimes(root: Path) -> dict[Path, float]:
    """Every file under `root` (editors' scratch files left out) and its
    modification time; a file that goes while we look is left out."""
    found = {}
    for path in root.rglob("*"):
        if EDITOR_FILES.search(path.name):
            continue
        with contextlib.suppress(OSError):
            if path.is_file():
                found[path] = path.stat().st_mtime
    return found


def changes(before: dict[Path, float], after: dict[Path, float]) -> tuple[set[Path], set[Path]]:
    """(files added or modified, files removed)."""
    changed = {p for p, t in after.items() if before.get(p) != t}
    return changed, set(before) - set(after)


def watch(server: DevServer) -> None:
    """Rebuild and boot on every change under the watched tree. A tree other
    than the repository's build/ is laid over the image; a change the overlay
    cannot carry then needs a full build, from the repository."""
    root = Path(server.settings.build_dir or BUILD_DIR)
    base = server.image if "overlay_of" not in server.image.manifest else None
    before = mtimes(root)
    rebuilds = 0
    while not server.stopping.wait(POLL_SECONDS):
        after = mtimes(root)
        changed, removed = changes(before, after)
        if not (changed or removed):
            continue
        before = after
        edited = max((after[p] for p in changed), default=time.time())
        rebuilds += 1
        names = ", ".join(sorted(p.relative_to(root).as_posix() for p in changed | removed))
        try:
            started = time.time()
            if base is not None and overlay_can_carry(changed, removed, root):
                kind = "overlay"
                image = overlay_image(base, server.session.dir / f"image-{rebuilds}", root)
            elif root != BUILD_DIR:
                server.note(
                    f"{names} changed: a full build is needed, from the repository's build/"
                )
                continue
            else:
                kind = "full"
                bin_path = server.settings.kubesolo_bin
                request = BuildRequest(
                    flavour=server.image.manifest["flavour"],
                    kubesolo_bin=Path(bin_path) if bin_path else None,
                )
                image = base = build(request)
            built = time.time()
            server.note(f"{names} changed: {kind} rebuild in {built - started:.1f}s, booting it")
            server.swap_image(image)
            server.machine.wait_for_boot()
            booted = time.time()
        except HarnessError as err:
            server.note(f"{names} changed: the rebuilt image did not boot: {err}")
            server.events.append({"changed": names, "error": str(err)})
            continue
        event = {
            "changed": names,
            "kind": kind,
            "build_seconds": round(built - started, 2),
            "boot_seconds": round(booted - built, 2),
            "edit_to_stage90_seconds": round(booted - edited, 2),
        }
        server.events.append(event)
        server.note(
            f"stage 90 reached {event['edit_to_stage90_seconds']}s after the edit "
            f"(rebuild {event['build_seconds']}s, boot {event['boot_seconds']}s)"
        )
