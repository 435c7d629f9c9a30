"""The previous release for the upgrade checks (docs/architecture.md
"Upgrades"): a bad --upgrade-from is one line, an image directory is taken
as it is, and a revision resolves to its commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.build import previous
from harness.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_a_revision_resolves_to_its_commit():
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert previous.resolve_commit(REPO, "HEAD") == head


def test_neither_a_directory_nor_a_revision_is_one_line():
    with pytest.raises(UserError) as err:
        previous.previous_image("no-such-release-xyz", REPO)
    assert str(err.value) == (
        "--upgrade-from no-such-release-xyz: neither an image directory nor a git revision "
        f"of {REPO}"
    )


def test_a_directory_that_is_no_image_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"is not a KubeSolo OS image directory \(missing "):
        previous.previous_image(str(tmp_path), REPO)
