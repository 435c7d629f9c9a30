"""Old cache entries go (docs/architecture.md "Image cache"): beyond the most
recently used ones, idle for an hour, and never one whose lock is held."""

from __future__ import annotations

import os
import shutil
import time

from filelock import FileLock

from harness.artefact import IMAGE_FILES, Image
from harness.build import prune
from harness.build.builder import export


def entry(directory, name, age):
    path = directory / name
    path.mkdir()
    (directory / f"{name}.lock").touch()
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_only_old_idle_entries_beyond_the_kept_ones_go(tmp_path):
    recent = [entry(tmp_path, f"new{i}", i) for i in range(3)]
    busy_lately = entry(tmp_path, "lately", 600)
    old = [entry(tmp_path, f"old{i}", 7200 + i) for i in range(3)]
    removed = prune.prune(tmp_path, keep=3)
    assert removed == old
    assert all(p.is_dir() for p in [*recent, busy_lately])
    assert not any(p.exists() for p in old)


def test_an_entry_whose_lock_is_held_stays(tmp_path):
    held = entry(tmp_path, "held", 7200)
    with FileLock(str(held) + ".lock"):
        assert prune.prune(tmp_path, keep=0) == []
    assert held.is_dir()


def test_a_cache_hit_makes_an_entry_recent(tmp_path):
    path = entry(tmp_path, "hit", 7200)
    prune.touch(path)
    assert prune.stale_entries(tmp_path, time.time(), keep=0) == []


def test_an_image_a_machine_runs_on_stays(tmp_path):
    """docs/architecture.md "Image cache": a machine's lease (a dev VM's, for
    days) keeps the image its disks are built on."""
    used = entry(tmp_path, "used", 7200)
    lease = Image(used).lease()
    try:
        assert prune.prune(tmp_path, keep=0) == []
    finally:
        os.close(lease)
    assert prune.prune(tmp_path, keep=0) == [used]


def test_an_image_a_kept_run_directory_needs_stays_while_it_does(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    images = tmp_path / "cache" / "kubesolo-harness" / "images"  # only cached images are kept
    images.mkdir(parents=True)
    kept = entry(images, "kept", 7200)
    run_dir = tmp_path / "artifacts" / "test_x" / "vm0"
    run_dir.mkdir(parents=True)
    Image(kept).keep_for(run_dir)
    assert prune.prune(images, keep=0) == []
    shutil.rmtree(run_dir)  # the user removed what was kept
    assert prune.prune(images, keep=0) == [kept]
    assert not (images / "kept.kept").exists()


def test_an_exported_image_is_a_copy(tmp_path):
    """Editing an exported file leaves the cache's entry as it was."""
    cached = tmp_path / "cached"
    cached.mkdir()
    for name in IMAGE_FILES:
        (cached / name).write_bytes(b"original")
    out = export(Image(cached), tmp_path / "out")
    for name in IMAGE_FILES:
        assert (out.path / name).stat().st_ino != (cached / name).stat().st_ino
        (out.path / name).write_bytes(b"edited")
        assert (cached / name).read_bytes() == b"original"
