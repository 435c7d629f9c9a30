"""Pure parts of the image builder: globs, cache key, isolinux labels."""

from pathlib import Path

import pytest

from harness import artefact
from harness.build import builder as image
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
    assert bool(image.glob_regex(pattern).match(path)) is matches


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


def test_every_isolinux_label_has_the_serial_console_and_data_partition():
    """Spec "Bootloader": four labels, kubesolo the default, data partition on each."""
    default, labels = image.parse_isolinux_labels((REPO / "build/isolinux.cfg").read_text())
    assert default == "kubesolo"
    assert set(labels) == {"kubesolo", "kubesolo-debug", "kubesolo-shell", "kubesolo-nopersist"}
    for append in labels.values():
        assert "console=ttyS0,115200n8" in append.split()
        assert "kubesolo.data=LABEL=KSOLODATA" in append.split()
    assert "kubesolo.debug" in labels["kubesolo-debug"].split()
    assert "kubesolo.shell" in labels["kubesolo-shell"].split()
    assert "kubesolo.nopersist" in labels["kubesolo-nopersist"].split()


def test_isolinux_timeout_is_three_seconds():
    text = (REPO / "build/isolinux.cfg").read_text()
    assert "TIMEOUT 30" in text.splitlines()
    assert any(line.startswith("SERIAL 0 115200") for line in text.splitlines())


def test_rootfs_creates_parent_directories():
    rootfs = image.Rootfs()
    rootfs.add(image.cpio.Entry.file("usr/lib/kubesolo-os/x", b""))
    assert {"usr", "usr/lib", "usr/lib/kubesolo-os"} <= set(rootfs.entries)


def test_list_files_ignore_comments():
    assert image.words("a b # c\n# d\n e") == ["a", "b", "e"]


def test_an_incomplete_image_directory_is_refused(tmp_path):
    (tmp_path / "vmlinuz").write_bytes(b"")
    with pytest.raises(UserError, match="not a KubeSolo OS image directory"):
        artefact.Image.open(tmp_path)


def test_unknown_flavour_is_refused():
    with pytest.raises(UserError, match="unknown flavour"):
        image.build(image.BuildRequest(flavour="deluxe"))
