"""The files a dynamically linked program loads: its dynamic loader (PT_INTERP)
and the shared libraries named by DT_NEEDED, recursively, found where Debian's
loader looks for them. A workload image takes exactly these files, so it
holds no library nobody loads and misses none a program needs.

Why ELF and not package Depends: Depends say which packages must be
installed, not which of their files run (libc6 is 13 MB, 8 MB of it
iconv modules nginx never loads), and they list non-library dependencies too
(nginx depends on iproute2). DT_NEEDED is what the loader actually reads.
Depends are still used, by the caller, to find which packages to look in.
A library loaded with dlopen() is in no DT_NEEDED: a recipe that needs one
takes it by name (nginx, with glibc 2.36's built-in NSS files, needs none)."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness import elf
from harness.errors import UserError

# The directories Debian's x86-64 glibc searches without an ld.so.cache (its
# system directories: the multiarch ones first). A container has no cache.
SEARCH_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib")
MAX_LINKS = 40  # as the kernel's symlink limit: a loop is an error, not a hang


class Tree(Protocol):
    """A read-only file tree, paths relative to its root ("usr/sbin/nginx")."""

    def kind(self, path: str) -> str | None:
        """ "file", "link", "dir" or None when absent."""

    def read(self, path: str) -> bytes: ...

    def readlink(self, path: str) -> str: ...


@dataclass
class Closure:
    """What the programs load (`paths`: files and the links leading to them,
    sorted) and what could not be found (`missing`: (soname, needed by))."""

    paths: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)


def follow(tree: Tree, path: str) -> list[str]:
    """`path` and every symlink after it, ending at a file (a relative link
    target is relative to the link's directory, an absolute one to the root)."""
    chain = [path]
    while tree.kind(path) == "link":
        if len(chain) > MAX_LINKS:
            raise UserError(f"symlink loop at {chain[0]}")
        target = tree.readlink(path)
        base = "" if target.startswith("/") else posixpath.dirname(path)
        path = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
        chain.append(path)
    if tree.kind(path) != "file":
        raise UserError(f"{chain[0]} leads to {path}, which is not a file")
    return chain


def find_library(tree: Tree, soname: str) -> str | None:
    """The path of a soname in the loader's search order, None when absent."""
    for directory in SEARCH_DIRS:
        path = f"{directory}/{soname}"
        if tree.kind(path) is not None:
            return path
    return None


def closure(tree: Tree, programs: Iterable[str]) -> Closure:
    """The loader and library closure of `programs` (paths of files in `tree`).
    Files that are not ELF (scripts, data) need nothing; static programs
    need nothing."""
    taken: set[str] = set()
    missing: list[tuple[str, str]] = []
    queue = [path for program in programs for path in follow(tree, program)]
    taken.update(queue)
    done: set[str] = set()
    while queue:
        path = queue.pop()
        if tree.kind(path) != "file" or path in done:
            continue
        done.add(path)
        data = tree.read(path)
        if not elf.is_elf64_le(data):
            continue
        wanted: list[tuple[str, str | None]] = []
        loader = elf.interpreter(data)
        if loader:
            wanted.append((loader, loader.lstrip("/")))
        wanted += [(soname, find_library(tree, soname)) for soname in elf.needed(data)]
        for name, found in wanted:
            if found is None or tree.kind(found) is None:
                missing.append((name, path))
                continue
            chain = follow(tree, found)
            queue += [p for p in chain if p not in taken]
            taken.update(chain)
    return Closure(sorted(taken), sorted(set(missing)))


class UnionTree:
    """Unpacked Debian packages seen as one root file system: a path is
    looked up in each package in turn (the first one that has it wins)."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = roots  # package -> its unpacked files

    def owner(self, path: str) -> str | None:
        """The package a path comes from."""
        for package, root in self.roots.items():
            if (root / path).is_symlink() or (root / path).exists():
                return package
        return None

    def host_path(self, path: str) -> Path:
        owner = self.owner(path)
        if owner is None:
            raise UserError(f"no package holds {path}")
        return self.roots[owner] / path

    def kind(self, path: str) -> str | None:
        owner = self.owner(path)
        if owner is None:
            return None
        real = self.roots[owner] / path
        if real.is_symlink():
            return "link"
        return "dir" if real.is_dir() else "file"

    def read(self, path: str) -> bytes:
        return self.host_path(path).read_bytes()

    def readlink(self, path: str) -> str:
        return str(self.host_path(path).readlink())
