"""Machine configuration checks and the kernel command line."""

import json

import pytest

from harness.artefact import Image
from harness.errors import UserError
from harness.pytest.options import Settings, run_dir_name
from harness.pytest.reports import ACTIVITY, MACHINES, used_machines
from harness.vm.config import MachineConfig, kernel_cmdline, validate


@pytest.fixture
def image(tmp_path):
    manifest = {
        "default_label": "kubesolo",
        "labels": {
            "kubesolo": "console=ttyS0 kubesolo.data=LABEL=KSOLODATA",
            "kubesolo-shell": "console=ttyS0 kubesolo.shell",
        },
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return Image(tmp_path)


def test_kernel_args_are_appended_to_the_label(image):
    config = MachineConfig(kernel_args="kubesolo.debug")
    assert (
        kernel_cmdline(image, config)
        == "console=ttyS0 kubesolo.data=LABEL=KSOLODATA kubesolo.debug"
    )
    assert (
        kernel_cmdline(image, MachineConfig(label="kubesolo-shell"))
        == "console=ttyS0 kubesolo.shell"
    )


def test_base_cmdline_replaces_the_label(image):
    assert kernel_cmdline(image, MachineConfig(base_cmdline="console=ttyS0")) == "console=ttyS0"


def test_unknown_label_is_a_clear_error(image):
    with pytest.raises(UserError, match="no boot label 'nope'"):
        kernel_cmdline(image, MachineConfig(label="nope"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"boot": "floppy"}, "boot='floppy'"),
        ({"network": "wide"}, "network='wide'"),
        ({"accel": "hvf"}, "accel='hvf'"),
        ({"memory_mb": 16}, "memory_mb=16"),
        ({"data_disk": "/nonexistent/disk.qcow2"}, "no such qcow2 file"),
        ({"nics": 2, "macs": ("52:54:00:00:00:01",)}, "one MAC per NIC"),
        ({"data_disk": False, "data_disk_readonly": True}, "has no data disk"),
        ({"allow_failures": True}, "a set of failure pattern names"),
        ({"allow_failures": frozenset({"panic"})}, "unknown failure pattern panic"),
    ],
)
def test_bad_configuration_is_one_clear_line(fields, message):
    with pytest.raises(UserError, match=message) as err:
        validate(MachineConfig(**fields))
    assert "\n" not in str(err.value)


def test_unknown_machine_settings_are_refused(tmp_path):
    settings = Settings("tcg", 512, 1, 240.0, "restricted", False, tmp_path, tmp_path / "t")
    with pytest.raises(UserError, match="unknown machine settings: colour"):
        settings.machine_config(colour="red")
    assert settings.machine_config(cpus=2).cpus == 2


def test_run_dir_names_are_safe():
    assert (
        run_dir_name("tests/boot/test_x.py::test_y[a/b c]") == "tests_boot_test_x.py_test_y_a_b_c"
    )


class FakeMachine:
    def __init__(self, activity: int) -> None:
        self.activity = activity


class FakeItem:
    """What used_machines reads of a pytest item: its stash and the session's."""

    def __init__(self, own, shared, before) -> None:
        self.stash = {MACHINES: own, ACTIVITY: before}
        self.session = type("Session", (), {"stash": {MACHINES: shared}})()


def test_a_failure_report_shows_only_the_machines_the_test_used():
    """A session machine counts as used only if its activity grew during the test."""
    own, touched, idle = FakeMachine(3), FakeMachine(5), FakeMachine(7)
    item = FakeItem([own], [touched, idle], {id(touched): 4, id(idle): 7})
    assert used_machines(item) == [own, touched]
