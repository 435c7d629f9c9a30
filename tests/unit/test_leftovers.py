"""What killed runs leave behind (docs/architecture.md "Hygiene"): run directories
and socket directories whose process died and that no teardown kept."""

from __future__ import annotations

import os
import subprocess

from harness.pytest import leftovers


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def run_dir(artifacts, name, pid=None, kept=False):
    directory = artifacts / "test_x" / name
    directory.mkdir(parents=True)
    if pid is not None:
        (directory / leftovers.OWNER_FILE).write_text(f"{pid}\n")
    if kept:
        leftovers.mark_kept(directory)
    return directory


def test_only_unkept_directories_of_dead_owners_are_leftovers(tmp_path):
    dead = dead_pid()
    orphan = run_dir(tmp_path, "orphan", dead)
    run_dir(tmp_path, "kept", dead, kept=True)
    run_dir(tmp_path, "live", os.getpid())
    run_dir(tmp_path, "unowned")
    assert leftovers.leftover_run_dirs(tmp_path) == [orphan]


def test_socket_dirs_are_named_after_their_process(tmp_path):
    dead = dead_pid()
    (tmp_path / f"ksh-{dead}-abc").mkdir()
    (tmp_path / "ksh-1-def").mkdir()  # init is alive
    (tmp_path / "ksh-nopid").mkdir()
    assert leftovers.leftover_socket_dirs(tmp_path) == [tmp_path / f"ksh-{dead}-abc"]


def test_removal_takes_the_emptied_test_directory_too(tmp_path):
    orphan = run_dir(tmp_path, "orphan", dead_pid())
    assert orphan in leftovers.remove_leftovers(tmp_path)
    assert not (tmp_path / "test_x").exists()
