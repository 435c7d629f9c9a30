"""The suites' fixture manifests (fixtures/manifests/<name>.yaml): `${UPPER}`
values substituted, documents loaded, nothing else interpreted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.k8s.errors import ManifestError

MANIFEST_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "manifests"
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def substitute(text: str, values: Mapping[str, object]) -> str:
    """Replace `${UPPER_CASE}` only, so shell scripts inside manifests keep `$i`, `$((...))`."""
    missing = sorted({m for m in VARIABLE.findall(text) if m not in values})
    if missing:
        raise ManifestError(f"manifest needs values for: {', '.join(missing)}")
    return VARIABLE.sub(lambda m: str(values[m.group(1)]), text)


def load_manifest(
    name: str, values: Mapping[str, object] | None = None, directory: Path = MANIFEST_DIR
) -> list[dict[str, Any]]:
    """Documents of fixtures/manifests/<name>.yaml after substitution, empty ones dropped."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise ManifestError(f"no manifest {path}")
    text = substitute(path.read_text(encoding="utf-8"), values or {})
    return [doc for doc in yaml.safe_load_all(text) if doc]
