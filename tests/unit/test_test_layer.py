"""The test layer only adds, and the proof sees any change it makes to a
release file (docs/architecture.md "Release image")."""

from __future__ import annotations

import pytest

from harness.build import cpio
from harness.build.layer_proof import initramfs_problems
from harness.build.rootfs import Rootfs
from harness.build.test_layer import LAYER_DIR, MARKER, add_test_layer, layer_paths
from harness.errors import UserError

RELEASE = [
    cpio.Entry.directory("etc"),
    cpio.Entry.file("etc/os-release", b"ID=kubesolo-os\n"),
    cpio.Entry.file("sbin/init", b"#!/bin/sh\n", 0o755),
]


def layer_tree(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        (tmp_path / LAYER_DIR / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / LAYER_DIR / rel).write_text(text)
    return tmp_path


def release_rootfs() -> Rootfs:
    rootfs = Rootfs()
    for entry in RELEASE:
        rootfs.add(entry)
    return rootfs


def test_the_layer_adds_its_files_and_a_marker_listing_them(tmp_path):
    rootfs = release_rootfs()
    added = add_test_layer(rootfs, layer_tree(tmp_path, {"etc/test-shell.conf": "x\n"}))
    assert added == ["etc/test-shell.conf", MARKER]
    assert layer_paths(rootfs.entries[MARKER].data.decode()) == added
    assert rootfs.entries["etc/os-release"] == RELEASE[1]


def test_a_layer_that_would_replace_a_release_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="test layer's etc/os-release would replace the release"):
        add_test_layer(release_rootfs(), layer_tree(tmp_path, {"etc/os-release": "ID=x\n"}))


def archive(entries) -> bytes:
    return cpio.archive(entries)


def test_the_proof_holds_for_the_release_plus_its_listed_layer():
    marker = cpio.Entry.file(MARKER, f"bin/test-shell\n{MARKER}\n".encode())
    extra = [cpio.Entry.file("bin/test-shell", b"#!/bin/sh\n", 0o755), marker]
    count, layer, problems = initramfs_problems(archive(RELEASE), archive(RELEASE + extra))
    assert (count, layer, problems) == (3, ["bin/test-shell", MARKER], [])


@pytest.mark.parametrize(("changed", "says"), [
    (cpio.Entry.file("etc/os-release", b"ID=other\n"),
     "etc/os-release: the test initramfs changes its bytes"),
    (cpio.Entry.file("sbin/init", b"#!/bin/sh\n", 0o777),
     "sbin/init: the test initramfs changes its mode"),
    (cpio.Entry("sbin/init", RELEASE[2].mode, RELEASE[2].data, owner=(1000, 0)),
     "sbin/init: the test initramfs changes its owner"),
])  # fmt: skip
def test_the_proof_names_a_release_file_the_test_image_changes(changed, says):
    marker = cpio.Entry.file(MARKER, f"{MARKER}\n".encode())
    test = [e for e in RELEASE if e.path != changed.path] + [changed, marker]
    _, _, problems = initramfs_problems(archive(RELEASE), archive(test))
    assert problems == [says]


def test_the_proof_names_what_the_layer_does_not_list_and_what_is_missing():
    marker = cpio.Entry.file(MARKER, f"{MARKER}\n".encode())
    test = [*RELEASE[:2], cpio.Entry.file("bin/sneaked", b""), marker]
    _, _, problems = initramfs_problems(archive(RELEASE), archive(test))
    assert problems == [
        "sbin/init: in the release initramfs, not in the test one",
        "the test initramfs holds files its layer does not list: ['bin/sneaked']",
    ]


def test_the_proof_names_a_release_file_the_layer_replaced_and_lists():
    changed = cpio.Entry.file("sbin/init", b"#!/bin/sh\necho test\n", 0o755)
    marker = cpio.Entry.file(MARKER, f"sbin/init\n{MARKER}\n".encode())
    _, _, problems = initramfs_problems(archive(RELEASE), archive([*RELEASE[:2], changed, marker]))
    assert problems == [
        "sbin/init: the test initramfs changes its bytes",
        "the test layer lists release files as its own: ['sbin/init']",
    ]
