"""Old cache entries go (docs/architecture.md "Image cache"): beyond the most
recently used ones, idle for an hour, and never one whose lock is held."""

from __future__ import annotations

import os
import time

from filelock import FileLock

from harness.build import prune


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
