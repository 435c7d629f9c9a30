"""Another local user, as the shared-host tests play her: the tests run as
root and drop to `nobody` with setpriv for what she does
(docs/architecture.md "Shared hosts")."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534  # Debian's nobody and nogroup


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("plays another user with setpriv: needs root")


def as_other_user(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`args` run as nobody:nogroup, with no supplementary groups."""
    needs_root()
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def python_as_other_user(code: str) -> subprocess.CompletedProcess[str]:
    """Python code run as nobody (the system interpreter: our venv may not be
    readable to her)."""
    return as_other_user(sys.executable, "-I", "-c", code)


def shared_directory() -> Path:
    """A directory every user may write, sticky, as /tmp is: where she gets
    to plant things first."""
    path = Path(tempfile.mkdtemp(prefix="shared-", dir="/tmp"))
    path.chmod(0o1777)
    return path
