"""The release check's report (docs/architecture.md "Release check"): JUnit
counts, what changed between two image manifests, and the HTML page with
its checks, boot chart and changes."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest

from harness.boottime import gate
from harness.boottime.chart import Bar, chart_svg
from harness.commands import release_check as rc


def manifest(kernel: str, packages: list[list[str]], kubesolo: str = "standin") -> dict:
    """An image manifest's fields that the report compares (harness/build/builder.py)."""
    return {"kernel_version": kernel, "kubesolo": kubesolo, "kubesolo_version": None,
            "packages": [{"name": n, "package": p, "version": v, "sha256": "0"}
                         for n, p, v in packages]}  # fmt: skip


def test_junit_counts_take_errors_as_failures(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(
        '<testsuites><testsuite tests="10" failures="1" errors="1" skipped="3"/></testsuites>'
    )
    assert rc.junit_counts(path) == {"tests": 10, "failures": 2, "skipped": 3}


def test_manifest_changes_name_versions_kernel_and_kubesolo():
    old = manifest("6.1.0-56", [["busybox", "busybox-static", "1.35"], ["crun", "crun", "1.8.1"]])
    new = manifest(
        "6.1.0-57", [["busybox", "busybox-static", "1.36"], ["runc", "runc", "1.1.5"]], "real"
    )
    assert rc.manifest_changes(old, new) == [
        ("kernel_version", "6.1.0-56", "6.1.0-57"),
        ("kubesolo", "standin", "real"),
        ("package busybox", "1.35", "1.36"),
        ("package crun", "1.8.1", "-"),
        ("package runc", "-", "1.1.5"),
    ]
    assert rc.manifest_changes(old, old) == []


class Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_the_report_shows_checks_chart_and_changes():
    checks = [
        rc.Check("upgrade", True, "1 passed, 0 failed, 0 skipped", 240.0),
        rc.Check("boot-time gate", False, "1 slower: | 40-sysctl.sh | ...", 60.0),
    ]
    page = rc.report_html(
        checks, [("package busybox", "1.35", "1.36")], [("initramfs", 1000, 1500)],
        chart_svg("median", [Bar("kernel", 0, 1, "kernel")]), "Release check against v1",
    )  # fmt: skip
    parser = Text()
    parser.feed(page)
    text = " ".join(" ".join(parser.text).split())
    assert "Release check against v1: FAILED" in text
    assert "upgrade pass" in text and "boot-time gate FAIL" in text
    assert "package busybox 1.35 1.36" in text and "initramfs 1,000 1,500 +500" in text
    assert "svg" in parser.tags and "rect" in parser.tags
    passing = rc.report_html(checks[:1], [], [], "", "x")
    assert "x: <span class=ok>PASSED</span>" in passing
    assert "no package, kernel or KubeSolo change" in passing


def test_a_gate_that_did_not_run_is_never_a_pass():
    """No baseline: the gate's row says "not run", and the headline names what was not
    checked; the run still passes (exit 0) when everything that ran passed."""
    checks = [
        rc.Check("upgrade", True, "1 passed, 0 failed, 0 skipped", 240.0),
        rc.Check("boot-time gate", True, "not run: no baseline; 5 boots saved", 60.0, ran=False),
    ]
    assert [c.result for c in checks] == ["pass", "not run"]
    assert rc.headline(checks) == "PASSED, not checked: boot-time gate"
    page = rc.report_html(checks, [], [], "", "Release check against v1")
    parser = Text()
    parser.feed(page)
    text = " ".join(" ".join(parser.text).split())
    assert "Release check against v1: PASSED, not checked: boot-time gate" in text
    assert "boot-time gate not run not run: no baseline" in text
    assert "boot-time gate pass" not in text
    failing = [rc.Check("upgrade", False, "1 failed", 1.0), checks[1]]
    assert rc.headline(failing) == "FAILED"
    assert rc.headline([]) == "FAILED"


JUNIT = """<testsuites><testsuite tests="4">
<testcase classname="tests.boot.test_boot_media.TestSeaBios" name="test_boots[iso]">
 <properties><property name="firmware" value="bios"/><property name="medium" value="iso"/>
 <property name="boot_seconds" value="12.5"/></properties></testcase>
<testcase classname="tests.boot.test_boot_media.TestOvmf" name="test_boots[disk]">
 <properties><property name="firmware" value="uefi"/><property name="medium" value="disk"/>
 <property name="boot_seconds" value="20.25"/></properties><failure message="x"/></testcase>
<testcase classname="tests.boot.test_boot_media.TestOvmf" name="test_boots[iso]">
 <properties><property name="firmware" value="uefi"/><property name="medium" value="iso"/>
 </properties><skipped message="s"/></testcase>
<testcase classname="tests.boot.test_boot_secure_boot" name="test_a_changed_kernel"/>
</testsuite></testsuites>"""


def test_the_matrix_reads_each_cell_from_junit(tmp_path):
    """docs/architecture.md "Release check": a cell passes only if its test ran and
    passed; its boot time is the test's recorded property."""
    path = tmp_path / "m.xml"
    path.write_text(JUNIT)
    assert rc.matrix_cells(path) == {
        ("bios", "iso"): rc.Cell(True, 12.5),
        ("uefi", "disk"): rc.Cell(False, 20.25),
        ("uefi", "iso"): rc.Cell(False, None),
    }


def test_the_matrix_table_has_every_firmware_and_medium():
    cells = {("bios", "iso"): rc.Cell(True, 12.5), ("uefi", "disk"): rc.Cell(False, 20.2)}
    parser = Text()
    parser.feed(rc.matrix_html(cells))
    text = " ".join(" ".join(parser.text).split())
    assert text.startswith("firmware \\ medium ISO as CD ISO as USB disk disk image, virtio")
    assert "SeaBIOS pass, 12.5 s not run not run" in text
    assert "OVMF not run not run FAIL not run" in text
    assert text.count("not run") == 13
    assert "OVMF + Secure Boot" in text
    page = rc.report_html([], [], [], "", "x", rc.matrix_html(cells))
    assert "Firmware x medium" in page and "pass, 12.5 s" in page


def test_a_baseline_the_gate_cannot_compare_is_not_run_and_a_bad_one_is_one_line(tmp_path):
    """Read before any check runs: an earlier release's wall-clock baseline
    makes the gate "not run" (its boots are saved anew); a broken file stops
    the release check at once, in one line."""
    now = {"clock": "guest", "qemu": "QEMU emulator version 7.2.22", "icount": "shift=1,sleep=on"}
    wall = tmp_path / "wall.json"
    wall.write_text(json.dumps({"boots": 5, "medians": {"total": 3.1}}))
    expected, why = rc.read_baseline(wall, now)
    assert expected is None and why.startswith(
        "not run: the baseline was measured with clock 'wall'"
    )
    guest = tmp_path / "guest.json"
    guest.write_text(json.dumps({**now, "boots": 5, "medians": {"total": 6.6}}))
    assert rc.read_baseline(guest, now) == ({"total": 6.6}, "")
    assert rc.read_baseline(None, now) == (None, "not run: no baseline")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(gate.GateError, match="not a baseline file"):
        rc.read_baseline(broken, now)


def test_the_previous_release_is_built_from_the_repository_root():
    """git archive of a subdirectory would hold no build/: the previous
    release would be the current tree, built again."""
    assert (rc.REPO / "pyproject.toml").is_file() and (rc.REPO / "build").is_dir()
