"""The previous release's image, for the upgrade checks (docs/architecture.md
"Upgrades"): an image directory as given, or the test image that a git
revision of this repository builds with its own builder. A revision's image
is built once into the cache, keyed by its commit; the revision's tree is a
`git archive` export, so the work tree is never touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.artefact import Image, cache_root
from harness.errors import UserError
from harness.log import logger

log = logger("build.previous")
BUILD_TIMEOUT = 1800.0  # seconds for a revision's own build (cold: Debian downloads)


def resolve_commit(repo: Path, rev: str) -> str:
    """The full commit id of `rev` in `repo`, or one line saying it is none."""
    out = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise UserError(
            f"--upgrade-from {rev}: neither an image directory nor a git revision of {repo}"
        )
    return out.stdout.strip()


def previous_image(source: str, repo: Path) -> Image:
    """The image of `source`: an image directory, or a git revision's test image."""
    if Path(source).is_dir():
        return Image.open(Path(source))
    commit = resolve_commit(repo, source)
    out = cache_root() / "previous" / commit
    if (out / "manifest.json").is_file():
        return Image.open(out)
    log.info("building the test image of %s (%s) with its own builder", source, commit[:12])
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubesolo-previous-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
        staging = out.parent / f".{commit}.{os.getpid()}.tmp"  # on the cache's file system
        shutil.rmtree(staging, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        built = subprocess.run(
            [sys.executable, "-m", "harness", "build", "--flavour", "test", "--out", str(staging)],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if built.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            last = (built.stderr.strip() or built.stdout.strip() or "no output").splitlines()[-1]
            raise UserError(f"--upgrade-from {source}: its build failed: {last}")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)  # whole, or not at all
    return Image.open(out)
