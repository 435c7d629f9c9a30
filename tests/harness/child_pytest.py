"""A pytest run in a child process, on the session's image, for the tests that
end runs badly on purpose (signals, timeouts, crashes) and count what is left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def child_pytest(
    image: Path, artifacts: Path, test_file: Path, *args: str
) -> subprocess.Popen[bytes]:
    """Start `pytest ARGS TEST_FILE` on `image`, its run directories in `artifacts`."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    command += ["--kubesolo-image", str(image), "--accel", "tcg", "--artifacts", str(artifacts)]
    return subprocess.Popen(
        [*command, str(test_file)],
        cwd=test_file.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
