"""The dev VM's pure parts (docs/architecture.md "Developer tools"): the
forward grammar, the menu, session names and settings, what the fast
rebuild can carry, and how the watcher sees changes."""

from __future__ import annotations

import gzip
import json

import pytest

from harness.artefact import IMAGE_FILES, Image
from harness.build import cpio
from harness.build.overlay import overlay_can_carry, overlay_image
from harness.commands.cli import main
from harness.dev.session import Session, Settings
from harness.dev.terminal import MENU, MENU_LINE, parse_forward
from harness.dev.watch import changes, mtimes
from harness.errors import UserError


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("8080:80", {"host": 8080, "guest": 80}), ("6443", {"host": 0, "guest": 6443})],
)
def test_forward_grammar(text, parsed):
    assert parse_forward(text) == parsed


@pytest.mark.parametrize("text", ["", "a:80", "80:b", "1:2:3"])
def test_bad_forward_is_one_line(text):
    with pytest.raises(ValueError, match="write HOST:GUEST or GUEST"):
        parse_forward(text)


def test_menu_offers_what_a_developer_needs():
    actions = {what.split(" (")[0] for _, what in MENU.values()}
    assert actions == {
        "reboot", "hard reset", "shut down", "power off", "power on", "add a port forward",
        "save a snapshot", "detach", "quit",
    }  # fmt: skip
    assert MENU_LINE.startswith("[dev] r reboot · R hard reset")


@pytest.mark.parametrize("name", ["", "Dev", "a b", "../x", "-x", "x" * 33])
def test_bad_session_names(name):
    with pytest.raises(UserError, match="1 to 32 of a-z"):
        Session(name)


def test_settings_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    session = Session("dev-1")
    settings = Settings(name="dev-1", image="/img", forwards=[(0, 6443), (8080, 80)], owner=42)
    session.create(settings)
    assert session.dir == tmp_path / "kubesolo-dev/dev-1"
    assert session.settings() == settings
    assert session.server_pid() is None  # no server: a later create replaces the directory
    session.create(settings)


def test_what_the_overlay_carries(tmp_path):
    build = tmp_path / "build"
    stage = build / "rootfs/usr/lib/kubesolo-os/init.d/40-sysctl.sh"
    assert overlay_can_carry({stage}, set(), build)
    assert overlay_can_carry({build / "standin/kubesolo", build / "flavours/test/x"}, set(), build)
    assert not overlay_can_carry({build / "packages.toml"}, set(), build)
    assert not overlay_can_carry({build / "boot-modules.list"}, set(), build)
    assert not overlay_can_carry(set(), {stage}, build)  # a removal: a full build


def test_changes_sees_edits_additions_and_removals(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("1")
    before = mtimes(tmp_path)
    (tmp_path / "c").write_text("new")
    (tmp_path / "b").unlink()
    after = {**mtimes(tmp_path), tmp_path / "a": before[tmp_path / "a"] + 1}
    assert changes(before, after) == ({tmp_path / "a", tmp_path / "c"}, {tmp_path / "b"})


def test_overlay_image_appends_the_os_tree(tmp_path):
    """The new initramfs is the old one, byte for byte, then a gzip member
    with the tree's files; the other image files are the base's."""
    base = tmp_path / "base"
    base.mkdir()
    first = cpio.archive([cpio.Entry.file("etc/motd", b"old\n")])
    (base / "initramfs").write_bytes(gzip.compress(first))
    for name in IMAGE_FILES:
        if not (base / name).exists():
            (base / name).write_text("{}" if name == "manifest.json" else name)
    (base / "manifest.json").write_text(json.dumps({"flavour": "test", "kubesolo": "none"}))
    tree = tmp_path / "build"
    (tree / "rootfs/etc").mkdir(parents=True)
    (tree / "rootfs/etc/motd").write_text("new\n")
    image = overlay_image(Image(base), tmp_path / "out", tree)
    data = image.initramfs.read_bytes()
    original = (base / "initramfs").read_bytes()
    assert data.startswith(original)
    entries = cpio.parse(gzip.decompress(data[len(original) :]))
    assert {e.path: e.data for e in entries if e.path == "etc/motd"} == {"etc/motd": b"new\n"}
    assert image.kernel.resolve() == (base / "vmlinuz").resolve()
    assert image.manifest["overlay_of"] == str(base)


def test_a_socket_path_too_long_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / ("d" * 90)))
    with pytest.raises(UserError, match="over the 107 a Unix socket takes: set XDG_RUNTIME_DIR"):
        Session("dev").create(Settings(name="dev", image="/img"))


def test_a_bad_forward_option_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["dev", "--forward", "a:80"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "kubesolo-harness dev: error: argument --forward: 'a:80': write HOST:GUEST or GUEST, "
        "e.g. 8080:80 (see --help)\n"
    )
