"""One guest contract (docs/architecture.md "Data flow"): the VM suites take the
console markers and the guest paths from harness.guest and never spell them
again, so a change of the OS's contract is made in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from promised_values import P

from harness import guest

REPO = Path(__file__).resolve().parents[2]
VM_SUITES = ("tests/boot", "tests/persistence", "tests/harness", "tests/k8s")
# The values no suite may spell: every guest path, and the marker prefix.
CONTRACT = sorted(
    {
        value
        for name, value in vars(guest).items()
        if name.isupper() and isinstance(value, str) and value.startswith("/")
    }
    | {guest.INIT_PREFIX, r"\[kubesolo-init\]"},
    key=len,
    reverse=True,
)


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (prose may name a path)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spelled(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    skip = docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            for value in CONTRACT:
                if value in node.value and not _other_path(node.value, value):
                    hits.append(f"{path.relative_to(REPO)}:{node.lineno}: {value!r}")
                    break
    return hits


def _other_path(text: str, value: str) -> bool:
    """`/etc/kubesolo-x` is not `/etc/kubesolo`: the contract path must end there."""
    end = text.index(value) + len(value)
    return value.startswith("/") and end < len(text) and (text[end].isalnum() or text[end] in "-_.")


# Modules that state the spec's values on purpose, once, to pin them (docs/promises.md).
PIN_MODULES = {"tests/boot/promised.py"}


def suite_files() -> list[Path]:
    files = (p for d in VM_SUITES for p in (REPO / d).rglob("*.py"))
    return sorted(p for p in files if str(p.relative_to(REPO)) not in PIN_MODULES)


def test_the_contract_has_paths_and_markers():
    assert guest.DATA_MNT in CONTRACT and guest.ADMIN_KUBECONFIG in CONTRACT


# The contract pinned once, here, to what docs/boot-flow.md and docs/kubesolo.md say;
# the suites use the constants, so a change of the OS's contract fails this test.
PINNED = {
    "STAGES": P.SPEC_STAGES,  # docs/boot-flow.md "Overview", written out once
    "BOOT_MARKER": r"\[kubesolo\-init\] \[OK\] Stage (90\-kubesolo\.sh) complete",
    "LABELS": P.SPEC_LABELS,
    "DATA_PARAM": "kubesolo.data=LABEL=KSOLODATA",
    "DATA_MNT": "/mnt/data",
    "KUBESOLO_PATH": "/var/lib/kubesolo",
    "ADMIN_KUBECONFIG": "/var/lib/kubesolo/pki/admin/admin.kubeconfig",
    "KUBESOLO_BIN": "/usr/local/bin/kubesolo",
    "BIND_MOUNTS": (
        ("kubesolo", "/var/lib/kubesolo"),
        ("containerd", "/var/lib/containerd"),
        ("etc-kubesolo", "/etc/kubesolo"),
        ("log", "/var/log"),
        ("usr-local", "/usr/local"),
    ),
}


@pytest.mark.parametrize("name", PINNED)
def test_the_contract_is_what_the_docs_say(name):
    assert getattr(guest, name) == PINNED[name]


@pytest.mark.parametrize("path", suite_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_suites_do_not_spell_the_contract(path: Path):
    assert spelled(path) == []
