"""A file tree's content as a table (path -> content digest, exec bit, link
target): the builder's cache keys hash it, and an unpacked package is
checked against the table made when it was unpacked."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def tree_digest(root: Path) -> dict[str, str]:
    """path -> sha256 of content (or link target), with the exec bit."""
    digest = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            mode = "x" if os.access(path, os.X_OK) else "-"
            digest[rel] = mode + hashlib.sha256(path.read_bytes()).hexdigest()
    return digest
