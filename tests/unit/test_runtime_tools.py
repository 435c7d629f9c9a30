"""The runtime tools tree's pure parts: which libraries the tools need beyond
the image's (the ELF closure), and which files of a package are libraries."""

from __future__ import annotations

from pathlib import Path

from harness.build.runtime_tools import cache_key, library_closure, shared_objects

# crun's real needs (Debian 12) and those of the libraries it pulls in
ROOTS = {
    "bin/crun": ["libsystemd.so.0", "libseccomp.so.2", "libcap.so.2", "libyajl.so.2", "libc.so.6"],
    "bin/containerd": ["libc.so.6"],
}
LIBRARIES = {
    "libsystemd.so.0": ["libcap.so.2", "libgcrypt.so.20", "liblz4.so.1", "libc.so.6"],
    "libgcrypt.so.20": ["libgpg-error.so.0", "libc.so.6"],
    "libgpg-error.so.0": ["libc.so.6"],
    "libseccomp.so.2": ["libc.so.6"],
    "libcap.so.2": ["libc.so.6"],
    "libyajl.so.2": ["libc.so.6"],
    "liblz4.so.1": ["libc.so.6"],
    "libunused.so.1": ["libc.so.6"],
}
IMAGE = {"libc.so.6", "ld-linux-x86-64.so.2"}


def test_the_closure_follows_libraries_of_libraries():
    ship, missing = library_closure(ROOTS, LIBRARIES, IMAGE)
    assert missing == {}
    assert "libgpg-error.so.0" in ship  # crun -> libsystemd -> libgcrypt -> libgpg-error
    assert "liblz4.so.1" in ship


def test_the_closure_takes_nothing_unneeded_nor_what_the_image_has():
    ship, _ = library_closure(ROOTS, LIBRARIES, IMAGE)
    assert "libunused.so.1" not in ship
    assert "libc.so.6" not in ship
    assert ship == sorted(ship)


def test_a_library_nobody_ships_is_reported_with_who_needs_it():
    libraries = {k: v for k, v in LIBRARIES.items() if k != "libgcrypt.so.20"}
    ship, missing = library_closure(ROOTS, libraries, IMAGE)
    assert missing == {"libgcrypt.so.20": ["libsystemd.so.0"]}
    assert "libgpg-error.so.0" not in ship


def test_static_tools_need_nothing():
    assert library_closure({"bin/static": []}, LIBRARIES, IMAGE) == ([], {})


def test_shared_objects_are_found_under_their_link_names(tmp_path: Path):
    lib = tmp_path / "lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (lib / "libcap.so.2.66").write_bytes(b"\x7fELF")
    (lib / "libcap.so.2").symlink_to("libcap.so.2.66")
    (lib / "libdangling.so.1").symlink_to("nowhere.so.1")
    (tmp_path / "usr/share/doc").mkdir(parents=True)
    (tmp_path / "usr/share/doc/libfoo.so.txt").write_text("not a library")
    rels = [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if not p.is_dir()]
    found = shared_objects(tmp_path, rels)
    assert found == {
        "libcap.so.2": (lib / "libcap.so.2.66").resolve(),
        "libcap.so.2.66": (lib / "libcap.so.2.66").resolve(),
    }


def test_the_cache_key_depends_on_every_input():
    inputs = {"packages": [["crun", "1.8.1-1"]], "builder": {"a.py": "x"}}
    assert cache_key(inputs) == cache_key(dict(reversed(inputs.items())))
    assert cache_key(inputs) != cache_key({**inputs, "packages": [["crun", "1.8.1-2"]]})
