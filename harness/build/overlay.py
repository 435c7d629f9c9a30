"""The dev VM's fast rebuild: the OS's own files (build/rootfs, the flavour's,
the stand-in) packed as a second, small initramfs archive appended to a
built image's initramfs. The kernel unpacks the archives in order, so the
newer files win; a change this cannot express (a removed file, a package or
module list, the builder itself) needs a full build."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

from harness.artefact import IMAGE_FILES, Image
from harness.build.rootfs import BUILD_DIR, KUBESOLO_IN_IMAGE, Rootfs, add_os_tree
from harness.build.test_layer import add_test_layer

# What the overlay can carry: trees of files laid over the image as they are.
OVERLAY_SOURCES = ("rootfs", "flavours", "standin")


def overlay_can_carry(changed: set[Path], removed: set[Path], build_dir: Path = BUILD_DIR) -> bool:
    """True when every change is a file edited or added under the OS's own
    trees; a removal, or a change anywhere else, needs a full build."""
    if removed:
        return False
    trees = [build_dir / name for name in OVERLAY_SOURCES]
    return all(any(path.is_relative_to(tree) for tree in trees) for path in changed)


def overlay_image(base: Image, out: Path, build_dir: Path = BUILD_DIR) -> Image:
    """`out` as an image: `base`'s files, with an initramfs that is base's
    followed by the OS's own files (of `build_dir`) as they are now."""
    manifest = base.manifest
    rootfs = Rootfs()
    add_os_tree(rootfs, build_dir)
    if manifest.get("kubesolo") == "standin":
        rootfs.add_path(KUBESOLO_IN_IMAGE, build_dir / "standin" / "kubesolo")
    if manifest["flavour"] == "test":
        add_test_layer(rootfs, build_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in IMAGE_FILES:
        if name not in ("initramfs", "manifest.json"):
            target = out / name
            target.unlink(missing_ok=True)
            os.symlink((base.path / name).resolve(), target)
    partial = out / "initramfs.partial"
    with partial.open("wb") as f:
        with (base.path / "initramfs").open("rb") as original:
            shutil.copyfileobj(original, f)
        f.write(gzip.compress(rootfs.archive(), compresslevel=1, mtime=0))
    os.replace(partial, out / "initramfs")
    (out / "manifest.json").write_text(json.dumps({**manifest, "overlay_of": str(base.path)}))
    return Image(out)
