"""tests/boot/promised.py, the boot suite's module of the doc's values, for
the unit tests that pin the same values without a VM (docs/promises.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _load_promised():
    spec = importlib.util.spec_from_file_location("promised", REPO / "tests/boot/promised.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


P = _load_promised()
