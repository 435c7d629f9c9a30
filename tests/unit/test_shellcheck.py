"""Every shell file of the OS passes `shellcheck -s sh` (POSIX sh: the guest
runs busybox ash, with no bash)."""

import shutil
import subprocess
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "build"


def shell_files() -> list[Path]:
    files = []
    for path in sorted(BUILD.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        head = path.read_bytes()[:64]
        if path.suffix == ".sh" or head.startswith(b"#!/bin/sh"):
            files.append(path)
    return files


def test_the_os_has_shell_files():
    names = {p.name for p in shell_files()}
    assert {"init", "functions.sh", "90-kubesolo.sh", "kubesolo", "test-shell"} <= names


@pytest.mark.parametrize("path", shell_files(), ids=lambda p: str(p.relative_to(BUILD)))
def test_shellcheck(path):
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck not found: install it (apt-get install shellcheck)")
    done = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout
