"""A pytest run in a child process, on the session's image, for the tests that
end runs badly on purpose (signals, timeouts, crashes) and count what is left."""

from __future__ import annotations

import signal
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
        preexec_fn=as_from_a_terminal,
    )


def as_from_a_terminal() -> None:
    """Ctrl-C and Ctrl-\\ at their defaults, as a shell at a terminal starts a
    command: a run started in the background (`cmd &` in a script, nohup)
    ignores SIGINT and SIGQUIT, and its children would inherit that."""
    for sig in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
