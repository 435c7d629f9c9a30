"""A program's loader and DT_NEEDED libraries read from its program headers
(harness.elf), the closure a workload image takes (harness.build.sharedlibs),
and the packages it comes from (workload_images.plan), on ELF files made here
byte by byte."""

from __future__ import annotations

import struct

import pytest

from harness import elf
from harness.build import debian, sharedlibs
from harness.build import workload_images as wi
from harness.build import workload_recipes as wr
from harness.errors import UserError

BASE = 0x400000  # where the test files load: addresses differ from file offsets
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3


def make_elf(interp: str | None = None, needed: tuple[str, ...] = (), strtab: bool = True) -> bytes:
    """A minimal x86-64 ELF: one PT_LOAD over the whole file, an optional
    PT_INTERP and a PT_DYNAMIC whose DT_NEEDED names sit in DT_STRTAB."""
    segments = [PT_LOAD] + ([PT_INTERP] if interp else []) + ([PT_DYNAMIC] if needed else [])
    at = 64 + 56 * len(segments)
    interp_bytes = interp.encode() + b"\0" if interp else b""
    interp_at = at
    dynstr = b"\0"
    offsets = []
    for name in needed:
        offsets.append(len(dynstr))
        dynstr += name.encode() + b"\0"
    dynstr_at = interp_at + len(interp_bytes)
    entries = [(1, off) for off in offsets]
    if strtab:
        entries.append((5, BASE + dynstr_at))
    entries.append((0, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    dynamic_at = dynstr_at + len(dynstr)
    total = dynamic_at + len(dynamic)
    header = struct.pack(
        "<4sBBBB8xHHIQQQIHHHHHH",
        b"\x7fELF", 2, 1, 1, 0, 3, 0x3E, 1, 0, 64, 0, 0, 64, 56, len(segments), 64, 0, 0,
    )  # fmt: skip
    where = {
        PT_LOAD: (0, total),
        PT_INTERP: (interp_at, len(interp_bytes)),
        PT_DYNAMIC: (dynamic_at, len(dynamic)),
    }
    phdrs = b"".join(
        struct.pack("<IIQQQQQQ", t, 4, where[t][0], BASE + where[t][0], 0, where[t][1], 0, 8)
        for t in segments
    )
    return header + phdrs + interp_bytes + dynstr + dynamic


def test_the_loader_and_needed_libraries_are_read():
    data = make_elf("/lib64/ld-linux-x86-64.so.2", ("libssl.so.3", "libc.so.6"))
    assert elf.interpreter(data) == "/lib64/ld-linux-x86-64.so.2"
    assert elf.needed(data) == ["libssl.so.3", "libc.so.6"]


def test_a_static_program_needs_nothing():
    data = make_elf()
    assert elf.interpreter(data) is None
    assert elf.needed(data) == []


def test_needed_names_without_a_string_table_are_refused():
    with pytest.raises(elf.ElfError, match="DT_STRTAB"):
        elf.needed(make_elf(needed=("libc.so.6",), strtab=False))


def test_not_an_elf_file_is_refused():
    with pytest.raises(elf.ElfError):
        elf.needed(b"#!/bin/sh\n")


class FakeTree:
    """A file tree in a dict: bytes are files, ("link", target) are symlinks."""

    def __init__(self, files: dict[str, bytes | tuple[str, str]]) -> None:
        self.files = files

    def kind(self, path: str) -> str | None:
        if path not in self.files:
            return None
        return "link" if isinstance(self.files[path], tuple) else "file"

    def read(self, path: str) -> bytes:
        data = self.files[path]
        assert isinstance(data, bytes)
        return data

    def readlink(self, path: str) -> str:
        link = self.files[path]
        assert isinstance(link, tuple)
        return link[1]


LOADER = "/lib64/ld-linux-x86-64.so.2"


def debian_like_tree(**extra: bytes | tuple[str, str]) -> FakeTree:
    """nginx-like: a program, an absolute loader link, versioned library links."""
    return FakeTree(
        {
            "usr/sbin/web": make_elf(LOADER, ("libssl.so.3", "libc.so.6")),
            "lib64/ld-linux-x86-64.so.2": ("link", "/lib/x86_64-linux-gnu/ld-2.so"),
            "lib/x86_64-linux-gnu/ld-2.so": make_elf(),
            "lib/x86_64-linux-gnu/libc.so.6": make_elf(LOADER, ("ld-linux-x86-64.so.2",)),
            "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": ("link", "ld-2.so"),
            "usr/lib/x86_64-linux-gnu/libssl.so.3": ("link", "libssl.so.3.0.0"),
            "usr/lib/x86_64-linux-gnu/libssl.so.3.0.0": make_elf(needed=("libc.so.6",)),
            "usr/lib/x86_64-linux-gnu/unused.so.1": make_elf(),
            **extra,
        }
    )


def test_the_closure_takes_the_loader_the_libraries_and_their_links():
    result = sharedlibs.closure(debian_like_tree(), ["usr/sbin/web"])
    assert result.missing == []
    assert result.paths == [
        "lib/x86_64-linux-gnu/ld-2.so",
        "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "lib64/ld-linux-x86-64.so.2",
        "usr/lib/x86_64-linux-gnu/libssl.so.3",
        "usr/lib/x86_64-linux-gnu/libssl.so.3.0.0",
        "usr/sbin/web",
    ]


def test_libraries_are_found_in_the_loaders_search_order():
    early = make_elf(needed=("libfirst.so.1",))
    tree = debian_like_tree(
        **{
            "usr/lib/x86_64-linux-gnu/libc.so.6": early,  # shadowed by /lib/x86_64-linux-gnu
        }
    )
    result = sharedlibs.closure(tree, ["usr/sbin/web"])
    assert "usr/lib/x86_64-linux-gnu/libc.so.6" not in result.paths
    assert result.missing == []


def test_a_missing_library_is_reported_with_who_needs_it():
    tree = debian_like_tree(
        **{"usr/lib/x86_64-linux-gnu/libssl.so.3.0.0": make_elf(needed=("libcrypto.so.3",))}
    )
    result = sharedlibs.closure(tree, ["usr/sbin/web"])
    assert result.missing == [("libcrypto.so.3", "usr/lib/x86_64-linux-gnu/libssl.so.3.0.0")]


def test_scripts_and_static_programs_need_nothing():
    tree = FakeTree({"bin/busybox": make_elf(), "etc/script": b"#!/bin/sh\necho\n"})
    result = sharedlibs.closure(tree, ["bin/busybox", "etc/script"])
    assert result.paths == ["bin/busybox", "etc/script"]
    assert result.missing == []


def test_a_symlink_loop_is_an_error_not_a_hang():
    tree = FakeTree({"a": ("link", "b"), "b": ("link", "a")})
    with pytest.raises(UserError, match="symlink loop"):
        sharedlibs.follow(tree, "a")


def test_a_dangling_link_is_an_error():
    tree = FakeTree({"lib/libx.so.1": ("link", "libx.so.1.0")})
    with pytest.raises(UserError, match="not a file"):
        sharedlibs.follow(tree, "lib/libx.so.1")


# ---- which packages an image needs (workload_images.plan) ---------------------


def fake_debian(monkeypatch, tmp_path, packages: dict[str, dict[str, bytes]], depends):
    """Packages as directories of files, apt's answers from tables; returns
    the list of dependency questions asked."""
    for name, files in packages.items():
        for rel, data in files.items():
            path = tmp_path / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    asked: list[list[str]] = []

    def resolve(specs):
        return [debian.ResolvedPackage(s, s.name, "1.0") for s in specs]

    def dependencies(names):
        asked.append(list(names))
        return {n: depends.get(n, []) for n in names}

    monkeypatch.setattr(debian, "resolve", resolve)
    monkeypatch.setattr(debian, "dependencies", dependencies)
    monkeypatch.setattr(debian, "unpacked", lambda pkg, cache: tmp_path / pkg.package)
    return asked


def app_recipe() -> wr.Recipe:
    return wr.Recipe("app", ("docker.io/library/app:1",), (("app", ("usr/bin/app",)),), {})


def test_libraries_are_looked_for_in_depends_a_level_at_a_time(monkeypatch, tmp_path):
    asked = fake_debian(
        monkeypatch,
        tmp_path,
        {
            "app": {"usr/bin/app": make_elf(needed=("libfoo.so.1",))},
            "libfoo1": {"usr/lib/x86_64-linux-gnu/libfoo.so.1": make_elf(needed=("libc.so.6",))},
            "libc6": {"lib/x86_64-linux-gnu/libc.so.6": make_elf()},
            "tools": {"usr/bin/tool": make_elf()},  # a Depends that holds no library
        },
        {"app": ["libfoo1", "tools"], "libfoo1": ["libc6"]},
    )
    planned = wi.plan(app_recipe())
    assert [p.package for p in planned] == ["app", "libc6", "libfoo1"]  # not "tools"
    assert asked == [["app"], ["app", "libfoo1"]]


def test_a_soname_in_no_dependency_is_one_line_naming_it(monkeypatch, tmp_path):
    fake_debian(
        monkeypatch,
        tmp_path,
        {"app": {"usr/bin/app": make_elf(needed=("libgone.so.2",))}, "libc6": {"x": b""}},
        {"app": ["libc6"]},
    )
    with pytest.raises(UserError, match=r"libgone\.so\.2 \(needed by /usr/bin/app\) is in none"):
        wi.plan(app_recipe())
