"""Small modules, one concept each (docs/architecture.md "Map"): no module
of the harness reaches 400 lines."""

from __future__ import annotations

from pathlib import Path

HARNESS = Path(__file__).resolve().parents[2] / "harness"
MAX_LINES = 400


def test_no_harness_module_reaches_400_lines():
    sizes = {
        p.relative_to(HARNESS.parent): len(p.read_text().splitlines())
        for p in HARNESS.rglob("*.py")
    }
    too_long = {str(p): n for p, n in sizes.items() if n >= MAX_LINES}
    assert not too_long, f"split these (one concept per module): {too_long}"
