"""Kernel modules: read .modinfo from .ko files, close over dependencies, and
write the modules.dep / modules.alias that busybox modprobe reads.

The Debian kernel package ships no modules.dep (depmod runs at install time),
so the builder computes what it needs from the modules themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness import elf


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    path: str  # relative to lib/modules/<version>/
    depends: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    softdeps: tuple[str, ...] = field(default=())


def module_name(filename: str) -> str:
    """Module name as modprobe sees it: basename without .ko, '-' as '_'."""
    base = filename.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def parse_modinfo(section: bytes) -> dict[str, list[str]]:
    """key=value strings of a .modinfo section, grouped by key."""
    info: dict[str, list[str]] = {}
    for entry in section.split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep:
            info.setdefault(key, []).append(value)
    return info


def softdep_names(specs: Iterable[str]) -> tuple[str, ...]:
    """Module names of 'pre: a b post: c' softdep strings."""
    return tuple(w for spec in specs for w in spec.split() if not w.endswith(":"))


def read_module(path: Path, relpath: str) -> ModuleInfo:
    info = parse_modinfo(elf.section(path.read_bytes(), ".modinfo"))
    depends = tuple(d for dep in info.get("depends", []) for d in dep.split(",") if d)
    return ModuleInfo(
        name=module_name(relpath),
        path=relpath,
        depends=depends,
        aliases=tuple(info.get("alias", [])),
        softdeps=softdep_names(info.get("softdep", [])),
    )


def scan_modules(moddir: Path) -> dict[str, ModuleInfo]:
    """Every module under lib/modules/<version>/kernel, by name."""
    modules = {}
    for path in sorted(moddir.glob("kernel/**/*.ko")):
        rel = path.relative_to(moddir).as_posix()
        modules[module_name(rel)] = read_module(path, rel)
    return modules


def alias_index(modules: Mapping[str, ModuleInfo]) -> dict[str, str]:
    """Exact (glob-free) aliases -> module name, for softdeps such as crc32c."""
    return {
        alias: name
        for name, info in modules.items()
        for alias in info.aliases
        if not any(c in alias for c in "*?[")
    }


def closure(
    wanted: Iterable[str], modules: Mapping[str, ModuleInfo], builtin: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """Modules needed to load `wanted` (hard dependencies and, where they
    exist, softdeps), and the wanted names that are neither modules nor
    built in. A softdep that names an alias is resolved through it."""
    builtin_set = {module_name(b) for b in builtin}
    aliases = alias_index(modules)
    needed: set[str] = set()
    missing: list[str] = []
    stack = [(module_name(w), True) for w in wanted]
    while stack:
        name, required = stack.pop()
        name = name if name in modules else aliases.get(name, name)
        if name in needed or name in builtin_set:
            continue
        info = modules.get(name)
        if info is None:
            if required and name not in missing:
                missing.append(name)
            continue
        needed.add(name)
        stack.extend((module_name(d), True) for d in info.depends)
        stack.extend((module_name(d), False) for d in info.softdeps)
    return sorted(needed), missing


def dependency_order(name: str, modules: Mapping[str, ModuleInfo]) -> list[str]:
    """All (transitive) hard dependencies of a module, deepest first, as
    modules.dep lists them (without the module itself)."""
    order: list[str] = []

    def visit(n: str) -> None:
        for dep in map(module_name, modules[n].depends):
            if dep in modules and dep not in order:
                visit(dep)
                order.append(dep)

    visit(name)
    return list(reversed(order))


def modules_dep(names: Iterable[str], modules: Mapping[str, ModuleInfo]) -> str:
    """modules.dep text: 'path: dep-path dep-path' per module."""
    lines = []
    for name in sorted(names):
        deps = " ".join(modules[d].path for d in dependency_order(name, modules))
        lines.append(f"{modules[name].path}:{' ' + deps if deps else ''}")
    return "\n".join(lines) + "\n"


def modules_alias(names: Iterable[str], modules: Mapping[str, ModuleInfo]) -> str:
    """modules.alias text: 'alias <pattern> <module>' per alias."""
    lines = [f"alias {alias} {name}" for name in sorted(names) for alias in modules[name].aliases]
    return "\n".join(lines) + "\n"
