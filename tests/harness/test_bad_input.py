"""Bad input, one table (docs/architecture.md "Errors"): every command-line flag,
pytest option, MachineConfig field and image directory that is wrong gives one
clear line naming the input, never a traceback, and starts no QEMU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.artefact import Image
from harness.disk import create_overlay
from harness.errors import UserError
from harness.vm.config import MachineConfig
from harness.vm.machine import Machine

REPO = Path(__file__).resolve().parents[2]
UNIT_TESTS = "tests/unit/test_ports.py"  # any quick tests: the error comes before them
pytestmark = pytest.mark.boot  # reads the built image


# ---- broken image directories, made from a copy of the session's image ----
def _truncate(name: str) -> Callable[[Path], None]:
    def apply(image: Path) -> None:
        data = (image / name).read_bytes()
        (image / name).unlink()
        (image / name).write_bytes(data[: len(data) // 2])

    return apply


def _not_a_kernel(image: Path) -> None:
    (image / "vmlinuz").unlink()
    (image / "vmlinuz").write_text("#!/bin/sh\necho I am no kernel\n")


def _without_label(image: Path) -> None:
    manifest = json.loads((image / "manifest.json").read_text())
    del manifest["labels"]["kubesolo-nopersist"]
    (image / "manifest.json").unlink()
    (image / "manifest.json").write_text(json.dumps(manifest))


def _empty(image: Path) -> None:
    for path in image.iterdir():
        path.unlink()


IMAGE_FAULTS: dict[str, Callable[[Path], None]] = {
    "empty": _empty,
    "truncated-initramfs": _truncate("initramfs"),
    "truncated-iso": _truncate("kubesolo-os.iso"),
    "vmlinuz-not-a-kernel": _not_a_kernel,
    "iso-without-the-spec-labels": _without_label,
}


def broken_image(source: Image, directory: Path, fault: str) -> Path:
    """A hard-linked copy of the image (files are replaced, never written in place)."""
    directory.mkdir()
    for path in source.path.iterdir():
        os.link(path, directory / path.name)
    IMAGE_FAULTS[fault](directory)
    return directory


@dataclass(frozen=True)
class Case:
    kind: str  # cli | pytest | image | machine
    given: tuple[str, ...] | dict  # argv, pytest args, an image fault, MachineConfig fields
    says: str  # the one line must contain this


CASES: dict[str, Case] = {
    "cli no command": Case("cli", (), "arguments are required: command"),
    "cli unknown command": Case("cli", ("frobnicate",), "invalid choice: 'frobnicate'"),
    "cli --flavour": Case("cli", ("build", "--flavour", "deluxe"), "invalid choice: 'deluxe'"),
    "cli --kubesolo-bin missing": Case(
        "cli", ("build", "--kubesolo-bin", "/nonexistent/kubesolo"), "no such file"
    ),
    "cli --kubesolo-bin not a binary": Case(
        "cli", ("build", "--kubesolo-bin", "/etc/hostname"), "not an x86-64 kubesolo binary"
    ),
    "cli --out unwritable": Case(
        "cli", ("build", "--out", "/proc/kubesolo/out"), "No such file or directory"
    ),
    "cli --runs": Case("cli", ("bench", "--runs", "0"), "--runs: 0: at least 1"),
    "cli --accel": Case("cli", ("bench", "--accel", "hvf"), "invalid choice: 'hvf'"),
    "pytest --vm-memory": Case("pytest", ("--vm-memory", "16"), "--vm-memory 16: at least 128"),
    "pytest --vm-cpus": Case("pytest", ("--vm-cpus", "0"), "--vm-cpus 0: at least 1"),
    "pytest --boot-timeout": Case("pytest", ("--boot-timeout", "0"), "--boot-timeout 0.0"),
    "pytest --accel": Case("pytest", ("--accel", "hvf"), "--accel hvf: use one of auto, kvm, tcg"),
    "pytest --vm-network": Case("pytest", ("--vm-network", "wide"), "--vm-network wide: use one"),
    "pytest --power-cuts": Case("pytest", ("--power-cuts", "0"), "--power-cuts 0: at least 1"),
    "pytest --flavour": Case(
        "pytest", ("--flavour", "debug"), "--flavour debug: use one of test, release"
    ),
    "pytest --timeline-baseline": Case(
        "pytest", ("--timeline-baseline", "/nonexistent/b.json"), "b.json: no such file"
    ),
    "pytest --upgrade-from": Case(
        "pytest", ("--upgrade-from", "no-such-rev"), "neither an image directory nor a git"
    ),
    "pytest --kubesolo-image missing": Case(
        "pytest", ("--kubesolo-image", "/nonexistent/image"), "no such image directory"
    ),
    "pytest --kubesolo-bin missing": Case(
        "pytest", ("--kubesolo-bin", "/nonexistent/kubesolo"), "no such file"
    ),
    "image empty": Case("image", ("empty",), "missing vmlinuz"),
    "image truncated initramfs": Case(
        "image", ("truncated-initramfs",), "initramfs does not match manifest.json"
    ),
    "image truncated ISO": Case(
        "image", ("truncated-iso",), "kubesolo-os.iso does not match manifest.json"
    ),
    "image vmlinuz not a kernel": Case(
        "image", ("vmlinuz-not-a-kernel",), "vmlinuz is not a Linux kernel"
    ),
    "image ISO without the spec labels": Case(
        "image", ("iso-without-the-spec-labels",), "lacks the labels kubesolo-nopersist"
    ),
    "machine boot": Case("machine", {"boot": "floppy"}, "boot='floppy'"),
    "machine label": Case("machine", {"label": "kubesolo-turbo"}, "no boot label 'kubesolo-turbo'"),
    "machine memory": Case("machine", {"memory_mb": 64}, "memory_mb=64: at least 128"),
    "machine cpus": Case("machine", {"cpus": 0}, "cpus=0: at least 1"),
    "machine accel": Case("machine", {"accel": "hvf"}, "accel='hvf'"),
    "machine network": Case("machine", {"network": "wide"}, "network='wide'"),
    "machine nics": Case("machine", {"nics": -1}, "nics=-1: not negative"),
    "machine macs": Case("machine", {"nics": 2, "macs": ("52:54:00:00:00:01",)}, "one MAC per NIC"),
    "machine forwards": Case("machine", {"forwards": (70000,)}, "guest ports are 1-65535"),
    "machine boot_timeout": Case("machine", {"boot_timeout": 0}, "boot_timeout=0"),
    "machine shares": Case("machine", {"shares": {"x": "/nonexistent"}}, "is not a directory"),
    "machine allow_failures": Case("machine", {"allow_failures": True}, "failure pattern names"),
    "machine allow_failures name": Case(
        "machine", {"allow_failures": frozenset({"panic"})}, "unknown failure pattern panic"
    ),
    "machine data_disk missing": Case(
        "machine", {"data_disk": "/nonexistent/disk.qcow2"}, "no such qcow2 file"
    ),
    "machine data_disk backing gone": Case("machine", {"data_disk": "BACKING-GONE"}, "restore"),
}


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


def run_cli(argv: tuple[str, ...]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "harness", *argv], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done
    return one_line(done.stderr)


def run_pytest(args: tuple[str, ...]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args, UNIT_TESTS],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode in (1, 4), done  # 4: usage error; 1: the session fixture failed
    errors = [line for line in (done.stdout + done.stderr).splitlines() if "error" in line.lower()]
    assert "Traceback" not in done.stdout + done.stderr
    return one_line("\n".join(errors))


def qemus_of(directory: Path) -> list[str]:
    out = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(directory) in line]


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_bad_input_is_one_clear_line(case: Case, kubesolo_image: Image, tmp_path: Path):
    if case.kind == "cli":
        line = run_cli(case.given)  # type: ignore[arg-type]
    elif case.kind == "pytest":
        line = run_pytest(case.given)  # type: ignore[arg-type]
    elif case.kind == "image":
        broken = broken_image(kubesolo_image, tmp_path / "image", case.given[0])
        line = run_pytest(("--kubesolo-image", str(broken)))
    else:
        fields = dict(case.given)  # type: ignore[arg-type]
        if fields.get("data_disk") == "BACKING-GONE":
            base = shutil.copy(kubesolo_image.data_disk, tmp_path / "base.qcow2")
            fields["data_disk"] = create_overlay(Path(base), tmp_path / "overlay.qcow2")
            Path(base).unlink()
        with (
            pytest.raises(UserError) as raised,
            Machine(kubesolo_image, MachineConfig(**fields), run_dir=tmp_path / "vm") as vm,
        ):
            vm.start()
        line = one_line(str(raised.value))
        assert not qemus_of(tmp_path), "a QEMU was left running"
    assert case.says in line, line
