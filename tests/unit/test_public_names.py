"""What a test author imports from `harness` itself (docs/architecture.md
"Map"): every listed name resolves, every error a test may catch is listed,
and importing the package loads no machine."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import harness
from harness.errors import HarnessError

# errors the harness raises only inside itself, never to a test
INTERNAL_ERRORS = {"_LostPortRace", "RequestGarbled"}  # retried by the harness itself


def typing_imports() -> dict[str, str]:
    """name -> module of the imports under `if TYPE_CHECKING:` in harness/__init__.py."""
    tree = ast.parse(Path(harness.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If))
    names: dict[str, str] = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.name] = (
                    f"{node.module}.{alias.name}" if node.module == "harness" else node.module
                )
    return names


def test_mypy_sees_the_names_that_run_time_gives():
    assert typing_imports() == harness.EXPORTS
    assert harness.__all__ == sorted(harness.EXPORTS)


def test_every_listed_name_resolves_to_its_module():
    for name, module in harness.EXPORTS.items():
        value = getattr(harness, name)
        home = value.__name__ if inspect.ismodule(value) else value.__module__
        assert home == module, name


def test_every_error_a_test_may_catch_is_exported():
    errors = set()
    for info in pkgutil.walk_packages(harness.__path__, "harness."):
        if info.name.startswith(("harness.__main__", "harness.commands")):
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, HarnessError)
                and value.__module__ == info.name
            ):
                errors.add(name)
    missing = errors - set(harness.__all__) - INTERNAL_ERRORS
    assert not missing, f"export these from harness/__init__.py: {sorted(missing)}"


def test_an_unknown_name_is_an_attribute_error():
    try:
        harness.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("harness.NoSuchThing resolved")


def test_importing_the_errors_loads_no_machine():
    code = (
        "import sys, harness.errors\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'harness'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['harness', 'harness.errors']"
