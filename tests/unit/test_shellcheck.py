"""Every shell file of the OS passes `shellcheck -s sh` (POSIX sh: the guest
runs busybox ash, with no bash) and has no line of 100 characters or more;
the library every stage sources holds none of stage 90's own helpers."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

BUILD = Path(__file__).resolve().parents[2] / "build"
LIB = BUILD / "rootfs/usr/lib/kubesolo-os"
MAX_LINE = 100  # every line is shorter
# KubeSolo's command line: kubesolo.sh, which stage 90 alone sources.
STAGE_90_ONLY = (
    "merge_flags",
    "kubesolo_args",
    "redact_flags",
    "cloud_init_portainer",
    "is_edge_value",
)


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
    wanted = {"init", "functions.sh", "kubesolo.sh", "90-kubesolo.sh", "kubesolo", "test-shell"}
    assert wanted <= names


@pytest.mark.parametrize("path", shell_files(), ids=lambda p: str(p.relative_to(BUILD)))
def test_shellcheck(path):
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck not found: install it (apt-get install shellcheck)")
    done = subprocess.run(["shellcheck", "-s", "sh", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@pytest.mark.parametrize("path", shell_files(), ids=lambda p: str(p.relative_to(BUILD)))
def test_lines_are_shorter_than_100_characters(path):
    lines = path.read_text().splitlines()
    long = [f"line {n}: {len(line)}" for n, line in enumerate(lines, 1) if len(line) >= MAX_LINE]
    assert not long, f"{path.name} has lines of {MAX_LINE} characters or more: {long}"


def defined(path: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*)\(\)", path.read_text(), re.M))


def test_stage_90_helpers_live_in_kubesolo_sh_which_only_stage_90_sources():
    assert not defined(LIB / "functions.sh") & set(STAGE_90_ONLY)
    assert set(STAGE_90_ONLY) <= defined(LIB / "kubesolo.sh")
    assert "KUBESOLO_FLAGS_TABLE" not in (LIB / "functions.sh").read_text()
    sourcing = [p.name for p in shell_files() if "/kubesolo-os/kubesolo.sh" in p.read_text()]
    assert sourcing == ["90-kubesolo.sh"]
