"""What names a booted state (docs/architecture.md "Snapshots")."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.pytest.snapshots import can_snapshot, config_settings, directory_digest
from harness.vm.config import MachineConfig
from harness.vm.qemu import QemuPlan, command_line
from harness.vm.snapshot import snapshot_key


def key(config: MachineConfig, extra: str = "", image: str = "test-abc") -> str:
    return snapshot_key(image, config_settings(config), extra)


def test_the_name_of_a_machine_does_not_change_its_booted_state():
    assert key(MachineConfig(name="a")) == key(MachineConfig(name="b"))


def test_every_other_setting_the_image_and_the_disk_do():
    every_setting = {f.name for f in dataclasses.fields(MachineConfig)} - {"name"}
    assert set(config_settings(MachineConfig())) == every_setting  # a new field is keyed too
    base = key(MachineConfig())
    changed = [
        key(MachineConfig(kernel_args="kubesolo.debug")),
        key(MachineConfig(memory_mb=1024)),
        key(MachineConfig(macs=("52:54:00:9a:bc:de",))),
        key(MachineConfig(data_disk=False)),
        key(MachineConfig(), image="test-def"),
        key(MachineConfig(), extra='{"etc-kubesolo/hostname": "x"}'),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_a_disk_file_is_named_by_its_content_not_its_path(tmp_path):
    one = MachineConfig(data_disk=tmp_path / "worker0.qcow2")
    two = MachineConfig(data_disk=tmp_path / "worker1.qcow2")
    assert key(one, "files") == key(two, "files") != key(one, "other files")


def test_shares_are_named_by_tag_and_by_what_they_hold(tmp_path):
    """Each worker has its own copy of a share: its path is no part of the key."""
    one, two = tmp_path / "gw0", tmp_path / "gw1"
    for share in (one, two):
        (share / "sub").mkdir(parents=True)
        (share / "sub" / "a.tar").write_bytes(b"image")
    assert directory_digest(one) == directory_digest(two)
    assert key(MachineConfig(shares={"img": one})) == key(MachineConfig(shares={"img": two}))
    assert key(MachineConfig(shares={"img": one})) != key(MachineConfig(shares={"other": one}))
    (two / "sub" / "a.tar").write_bytes(b"another image")
    assert directory_digest(one) != directory_digest(two)
    (two / "sub" / "a.tar").rename(two / "b.tar")
    (two / "b.tar").write_bytes(b"image")
    assert directory_digest(one) != directory_digest(two)  # names count too


def test_a_restore_waits_for_its_stream_by_qmp():
    plan = QemuPlan(
        accel="tcg", memory_mb=512, cpus=1, boot="kernel", kernel=Path("k"), initramfs=Path("i")
    )
    assert "-incoming" not in command_line(plan)
    cmd = command_line(dataclasses.replace(plan, incoming=Path("/snap/state")))
    assert cmd[cmd.index("-incoming") + 1] == "defer"


def test_allowed_failures_name_one_state_whatever_their_order():
    one = MachineConfig(allow_failures=frozenset({"stage-error", "kernel-oops", "init-died"}))
    two = MachineConfig(allow_failures=frozenset({"init-died", "stage-error", "kernel-oops"}))
    assert config_settings(one)["allow_failures"] == ["init-died", "kernel-oops", "stage-error"]
    assert key(one) == key(two)


def test_what_cannot_be_snapshot_boots_cold(tmp_path):
    assert can_snapshot(MachineConfig(), "")
    assert can_snapshot(MachineConfig(data_disk=False), "")
    assert not can_snapshot(MachineConfig(boot="iso"), "")
    shared = MachineConfig(shares={"src": tmp_path})
    assert not can_snapshot(shared, "its files")  # mounted: QEMU cannot migrate it
    assert not can_snapshot(shared, "", shares_released=True)  # what it holds is unnamed
    assert can_snapshot(shared, "its files", shares_released=True)
    assert not can_snapshot(MachineConfig(data_disk=tmp_path / "d.qcow2"), "")  # unnamed
    assert can_snapshot(MachineConfig(data_disk=tmp_path / "d.qcow2"), "its files")
