"""Host tools run by the builder and the machines: a failure becomes one line
that names the command and the tail of what it printed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.errors import ToolFailed

# What to install when a tool is missing (Debian package names).
PACKAGE_OF = {
    "qemu-img": "qemu-utils",
    "mkfs.ext4": "e2fsprogs",
    "xorriso": "xorriso",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "sgdisk": "gdisk",
    "grub-mkimage": "grub-common",
    "apt-get": "apt (build images on Debian 12)",
    "apt-cache": "apt (build images on Debian 12)",
    "dpkg-deb": "dpkg (build images on Debian 12)",
}


def run_tool(
    args: Sequence[str],
    cwd: Path | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> str:
    """Run a host tool (`env`: variables set over ours); its stdout, or
    ToolFailed with one line."""
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env={**os.environ, **env} if env else None,
        )
    except FileNotFoundError:
        package = PACKAGE_OF.get(args[0], args[0])
        raise ToolFailed(
            f"{args[0]} not found: install {package} (see README quick start)"
        ) from None
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{' '.join(args)}: no answer within {timeout:.0f}s") from None
    if done.returncode != 0:
        tail = " | ".join((done.stderr + done.stdout).strip().splitlines()[-5:])
        raise ToolFailed(f"command failed: {' '.join(args)}: {tail}")
    return done.stdout
