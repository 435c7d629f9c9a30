"""The image cache under faults (docs/architecture.md "Image cache"): a full disk
gives one clear line and no half-written entry, and a build killed mid-way
leaves the lock free and the cache usable. Real builds, real tmpfs, real SIGKILL."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock, Timeout

from harness.artefact import cache_root

pytestmark = pytest.mark.boot  # needs Debian's package tools and a built cache


def build_cli(cache: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", "build", "--flavour", "test", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def seed_debs(cache: Path) -> None:
    """The session's downloaded packages: no network needed below."""
    shutil.copytree(cache_root() / "debs", cache / "kubesolo-harness" / "debs")


def image_entries(cache: Path) -> list[str]:
    images = cache / "kubesolo-harness" / "images"
    return sorted(p.name for p in images.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    """A tmpfs just big enough for the downloaded packages, not for a build."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "cache"
    mount.mkdir()
    size = sum(p.stat().st_size for p in (cache_root() / "debs").iterdir()) + (24 << 20)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_cache_disk_is_one_line_and_leaves_no_half_entry(kubesolo_image, small_tmpfs):
    seed_debs(small_tmpfs)
    first = build_cli(small_tmpfs)
    out, err = first.communicate(timeout=600)
    assert first.returncode == 2, out + err
    error_lines = err.strip().splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith("kubesolo-harness build: error:")
    assert "No space left on device" in err or "no space left" in err
    assert "Traceback" not in out + err
    assert image_entries(small_tmpfs) == []  # no image, not even a half-written one

    subprocess.run(["mount", "-o", "remount,size=2G", str(small_tmpfs)], check=True)
    second = build_cli(small_tmpfs)
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err
    built = Path(out.strip().splitlines()[-1])
    assert (built / "manifest.json").is_file()
    assert image_entries(small_tmpfs) == [built.name]


def test_a_killed_build_leaves_the_lock_free_and_the_cache_usable(kubesolo_image, tmp_path):
    cache = tmp_path / "cache"
    seed_debs(cache)
    victim = build_cli(cache)
    images = cache / "kubesolo-harness" / "images"
    deadline = time.monotonic() + 120
    while not any(p.is_dir() for p in images.glob("test-*.*")):  # its work directory
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "the build never started its work directory"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    lock = next(images.glob("test-*.lock"))
    try:
        with FileLock(str(lock), timeout=0):
            pass
    except Timeout:
        pytest.fail(f"{lock} is still held after the build was killed")

    again = build_cli(cache)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    built = Path(out.strip().splitlines()[-1])
    assert "leftovers of a killed build" in out
    assert image_entries(cache) == [built.name]
