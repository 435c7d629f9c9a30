"""Pure parts of the image builder: globs, cache key, the root file system."""

from pathlib import Path

import pytest

from harness import artefact
from harness.build import builder as image
from harness.build import rootfs
from harness.errors import UserError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("lib/modules/*/kernel/**", "lib/modules/6.1/kernel/fs/ext4/ext4.ko", True),
        ("usr/lib/x86_64-linux-gnu/*", "usr/lib/x86_64-linux-gnu/libmnl.so.0", True),
        ("usr/lib/x86_64-linux-gnu/*", "usr/lib/x86_64-linux-gnu/xtables/libxt_nat.so", False),
        ("boot/vmlinuz-*", "boot/vmlinuz-6.1.0-56-amd64", True),
        ("bin/busybox", "bin/busybox2", False),
    ],
)
def test_glob_patterns(pattern, path, matches):
    assert bool(rootfs.glob_regex(pattern).match(path)) is matches


def test_cache_key_changes_with_any_input():
    inputs = {"flavour": "test", "build": {"a": "x1"}, "packages": [["p", "p", "1"]]}
    key = image.cache_key(inputs)
    assert key == image.cache_key(dict(reversed(list(inputs.items()))))
    for changed in (
        {"flavour": "release"},
        {"standin": True},
        {"build": {"a": "x2"}},
        {"packages": [["p", "p", "2"]]},
    ):
        assert image.cache_key({**inputs, **changed}) != key


def test_tree_digest_sees_content_and_exec_bit(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("echo")
    before = image.tree_digest(tmp_path)
    script.chmod(0o755)
    assert image.tree_digest(tmp_path) != before


def test_rootfs_creates_parent_directories():
    tree = rootfs.Rootfs()
    tree.add(image.cpio.Entry.file("usr/lib/kubesolo-os/x", b""))
    assert {"usr", "usr/lib", "usr/lib/kubesolo-os"} <= set(tree.entries)


def test_list_files_ignore_comments():
    assert rootfs.words("a b # c\n# d\n e") == ["a", "b", "e"]


def test_an_incomplete_image_directory_is_refused(tmp_path):
    (tmp_path / "vmlinuz").write_bytes(b"")
    with pytest.raises(UserError, match="not a KubeSolo OS image directory"):
        artefact.Image.open(tmp_path)


def test_unknown_flavour_is_refused():
    with pytest.raises(UserError, match="unknown flavour"):
        image.build(image.BuildRequest(flavour="deluxe"))
