"""The release check's report (docs/architecture.md "Release check"): JUnit
counts, what changed between two image manifests, and the HTML page with
its checks, boot chart and changes."""

from __future__ import annotations

from html.parser import HTMLParser

from harness import release_check as rc
from harness.vm.boot_chart import Bar, chart_svg


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
