"""`kubesolo-harness release-check`: the checks a release manager runs before
a release, one command, one report (docs/architecture.md "Release check"):
the upgrade from the previous release, the release image's console suite,
the firmware x medium matrix, the boot-time gate, and what changed in the
image since the previous release. Writes `<artifacts>/release-report.html`
with the matrix and the median boot chart inline, and prints one line per
check."""

from __future__ import annotations

import html
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artefact import Image
from harness.boottime import gate, guest_clock
from harness.boottime.chart import chart_svg
from harness.build.builder import BuildRequest, build
from harness.build.layer_proof import prove
from harness.build.previous import previous_image
from harness.build.rootfs import REPO
from harness.errors import HarnessError
from harness.private import write_shared

IMAGE_SIZES = ("vmlinuz", "initramfs", "kubesolo-os.iso", "kubesolo-os.img")
# the matrix: every firmware boots every medium (tests/boot/test_boot_media.py
# records each cell's firmware, medium and boot time as JUnit properties)
MATRIX_TESTS = ["tests/boot/test_boot_media.py", "tests/boot/test_boot_secure_boot.py"]
FIRMWARE_NAMES = {"bios": "SeaBIOS", "uefi": "OVMF", "secure-boot": "OVMF + Secure Boot"}
MEDIUM_NAMES = {
    "iso": "ISO as CD",
    "iso-usb": "ISO as USB disk",
    "disk": "disk image, virtio",
    "disk-usb": "disk image, USB",
    "disk-ahci": "disk image, SATA",
}
STYLE = (
    "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;margin:1em 0} "
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left} .ok{color:#15803d} "
    ".bad{color:#b91c1c;font-weight:bold} .notrun{color:#b45309;font-weight:bold}"
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    summary: str  # one line: counts, or why it failed
    seconds: float
    ran: bool = True  # False: nothing was checked (e.g. no baseline), so no verdict

    @property
    def result(self) -> str:
        """What the report and the terminal say of it: never "pass" for a check not run."""
        return "not run" if not self.ran else "pass" if self.passed else "FAIL"


def headline(checks: list[Check]) -> str:
    """The report's verdict, naming what was not checked: a PASSED with a gate
    that did not run would read as a gate that passed."""
    if not checks or any(c.ran and not c.passed for c in checks):
        return "FAILED"
    skipped = [c.name for c in checks if not c.ran]
    return f"PASSED, not checked: {', '.join(skipped)}" if skipped else "PASSED"


def junit_counts(path: Path) -> dict[str, int]:
    """tests, failures (errors included) and skipped of a JUnit XML report."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for suite in suites:
        counts["tests"] += int(suite.get("tests", 0))
        counts["failures"] += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        counts["skipped"] += int(suite.get("skipped", 0))
    return counts


MATRIX = "firmware x medium"
LAYER_CHECK = "release image = tested image - test layer"


@dataclass(frozen=True)
class Cell:
    passed: bool
    boot_seconds: float | None  # to stage 90, the first boot


def matrix_cells(path: Path) -> dict[tuple[str, str], Cell]:
    """(firmware, medium) -> the cell's outcome, from a JUnit report whose
    matrix test cases carry `firmware`, `medium` and `boot_seconds`."""
    cells = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        if "firmware" not in props or "medium" not in props:
            continue
        failed = any(case.find(tag) is not None for tag in ("failure", "error", "skipped"))
        seconds = props.get("boot_seconds")
        cell = Cell(not failed, float(seconds) if seconds else None)
        cells[(str(props["firmware"]), str(props["medium"]))] = cell
    return cells


def matrix_html(cells: dict[tuple[str, str], Cell]) -> str:
    """The matrix as a table: a row per firmware, a column per medium; a cell
    that did not run says so."""
    e = html.escape
    head = "".join(f"<th>{e(name)}</th>" for name in MEDIUM_NAMES.values())
    rows = ""
    for firmware, name in FIRMWARE_NAMES.items():
        row = ""
        for medium in MEDIUM_NAMES:
            cell = cells.get((firmware, medium))
            if cell is None:
                row += "<td class=bad>not run</td>"
            elif cell.passed and cell.boot_seconds is not None:
                row += f"<td class=ok>pass, {cell.boot_seconds:.1f} s</td>"
            elif cell.passed:
                row += "<td class=ok>pass</td>"
            else:
                row += "<td class=bad>FAIL</td>"
        rows += f"<tr><th>{e(name)}</th>{row}</tr>"
    return f"<table><tr><th>firmware \\ medium</th>{head}</tr>{rows}</table>"


def manifest_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, previous, now) for each package version, the kernel, KubeSolo
    and the flavour that differ between two image manifests."""
    rows = []
    for key in ("kernel_version", "kubesolo", "kubesolo_version"):
        if old.get(key) != new.get(key):
            rows.append((key, str(old.get(key)), str(new.get(key))))
    before = {p["name"]: p["version"] for p in old.get("packages", [])}
    after = {p["name"]: p["version"] for p in new.get("packages", [])}
    for name in sorted(before.keys() | after.keys()):
        if before.get(name) != after.get(name):
            rows.append((f"package {name}", before.get(name, "-"), after.get(name, "-")))
    return rows


def size_changes(old: Image, new: Image) -> list[tuple[str, int, int]]:
    """(file, previous bytes, bytes now) of the image's boot files."""
    return [(f, (old.path / f).stat().st_size, (new.path / f).stat().st_size) for f in IMAGE_SIZES]


def report_html(
    checks: list[Check],
    changes: list[tuple[str, str, str]],
    sizes: list[tuple[str, int, int]],
    chart: str,
    title: str,
    matrix: str = "",
) -> str:
    """The release report: the checks, the firmware x medium matrix, the
    median boot chart, what changed."""
    e = html.escape
    verdict = headline(checks)
    css = {"pass": "ok", "FAIL": "bad", "not run": "notrun"}
    rows = "".join(
        f"<tr><td>{e(c.name)}</td><td class={css[c.result]}>{c.result}</td>"
        f"<td>{e(c.summary)}</td><td>{c.seconds:.0f} s</td></tr>"
        for c in checks
    )
    verdict_class = "bad" if verdict == "FAILED" else "ok" if verdict == "PASSED" else "notrun"
    change_rows = (
        "".join(f"<tr><td>{e(w)}</td><td>{e(a)}</td><td>{e(b)}</td></tr>" for w, a, b in changes)
        or "<tr><td colspan=3>no package, kernel or KubeSolo change</td></tr>"
    )
    size_rows = "".join(
        f"<tr><td>{e(f)}</td><td>{a:,}</td><td>{b:,}</td><td>{b - a:+,}</td></tr>"
        for f, a, b in sizes
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{STYLE}</style>
</head><body>
<h1>{e(title)}: <span class={verdict_class}>{e(verdict)}</span></h1>
<h2>Checks</h2>
<table><tr><th>check</th><th>result</th><th>what</th><th>wall</th></tr>{rows}</table>
<h2>Firmware x medium (boot to stage 90 with the default label)</h2>
{matrix or "<p>the matrix did not run</p>"}
<h2>Boot chart (median plain boot)</h2>
{chart or "<p>no boots were timed</p>"}
<h2>Changes since the previous release</h2>
<table><tr><th>what</th><th>previous</th><th>now</th></tr>{change_rows}</table>
<table><tr><th>file</th><th>previous bytes</th><th>bytes now</th><th>change</th></tr>
{size_rows}</table>
</body></html>
"""


def run_pytest(name: str, args: list[str], artifacts: Path) -> Check:
    """One check as a pytest run of its own; its JUnit counts are its summary."""
    junit = artifacts / f"{name}.xml"
    junit.unlink(missing_ok=True)  # an earlier check's report is not this one's
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}",
         "--artifacts", str(artifacts / name), *args],
    )  # fmt: skip
    seconds = time.monotonic() - started
    if not junit.is_file():
        return Check(name, False, f"pytest wrote no report (exit {done.returncode})", seconds)
    c = junit_counts(junit)
    passed = c["tests"] - c["failures"] - c["skipped"]
    summary = f"{passed} passed, {c['failures']} failed, {c['skipped']} skipped"
    return Check(name, done.returncode == 0 and c["tests"] > c["skipped"], summary, seconds)


def read_baseline(path: Path | None, now: dict[str, Any]) -> tuple[dict[str, float] | None, str]:
    """(the medians to compare with, "") or (None, why the gate cannot run),
    read before any check runs: a bad file is one line at once."""
    if path is None:
        return None, "not run: no baseline"
    data = gate.load_baseline_file(path)
    why = guest_clock.incomparable(data, now)
    return (None, why) if why else (dict(data["medians"]), "")


def gate_check(
    expected: dict[str, float] | None,
    why_not: str,
    now: dict[str, Any],
    boots: int,
    artifacts: Path,
    image: Image,
) -> tuple[Check, str]:
    """The boot-time gate over `boots` cold boots on the guest's clock; with no
    baseline to compare with (`why_not`), the boots are timed and saved as the
    next release's baseline, and the gate did not run."""
    from harness.commands.boot_timeline import plain_boots  # boots machines: only when run

    started = time.monotonic()
    records = plain_boots(boots, "auto", gate.GUEST, image)
    values, count = gate.medians(records)
    chart = chart_svg(f"median of {count} plain boots (guest clock)", gate.median_bars(records))
    seconds = time.monotonic() - started
    if expected is None:
        gate.save_baseline(artifacts / "timeline-baseline.json", records, now)
        total = values.get(gate.TOTAL, 0.0)
        summary = (
            f"{why_not}; {count} boots saved as the next one "
            f"(timeline-baseline.json, stage 90 after {total:.2f} s of guest time)"
        )
        return Check("boot-time gate", True, summary, seconds, ran=False), chart
    passed, lines = gate.verdict(
        records, expected, gate.GUEST_THRESHOLD, gate.GUEST_MIN_SECONDS, gate.GUEST
    )
    slower = [line for line in lines if line.endswith("SLOWER |")]
    summary = lines[0] if not slower else f"{len(slower)} slower: " + "; ".join(slower)
    return Check("boot-time gate", passed, summary, seconds), chart


def layer_check(release: Image, tested: Image) -> Check:
    """The release image is the tested image minus the test layer
    (harness.build.layer_proof): what the suites tested is what ships."""
    started = time.monotonic()
    try:
        proof = prove(release, tested)
    except HarnessError as err:  # e.g. xorriso missing: this check fails, the others run
        return Check(LAYER_CHECK, False, f"could not compare: {err}", time.monotonic() - started)
    return Check(LAYER_CHECK, proof.holds, proof.summary(), time.monotonic() - started)


def main_release_check(previous: str, baseline: str | None, boots: int, artifacts: Path) -> int:
    artifacts = artifacts.resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    old = previous_image(previous, REPO)
    new = build(BuildRequest(flavour="test"))
    from harness.commands.boot_timeline import conditions  # reads QEMU's version: only when run

    now = conditions(gate.GUEST, new)
    expected, why_not = read_baseline(Path(baseline) if baseline else None, now)
    checks = [
        layer_check(build(BuildRequest(flavour="release", standin=True)), new),
        run_pytest("upgrade", ["tests/persistence/test_upgrade.py", "--upgrade-from", previous],
                   artifacts),
        run_pytest("release image", ["-n", "auto", "--flavour", "release", "tests/boot",
                                     "tests/persistence"], artifacts),
        run_pytest(MATRIX, ["-n", "auto", *MATRIX_TESTS], artifacts),
    ]  # fmt: skip
    junit = artifacts / f"{MATRIX}.xml"
    matrix = matrix_html(matrix_cells(junit)) if junit.is_file() else ""
    check, chart = gate_check(expected, why_not, now, boots, artifacts, new)
    checks.append(check)
    report = write_shared(
        artifacts / "release-report.html",
        report_html(checks, manifest_changes(old.manifest, new.manifest), size_changes(old, new),
                    chart, f"Release check against {previous}", matrix),
    )  # fmt: skip
    for c in checks:
        print(f"[release-check] {c.name}: {c.result} ({c.summary}, {c.seconds:.0f} s)")
    print(f"[release-check] {headline(checks)}; report: {report}")
    return 0 if all(c.passed for c in checks) else 1
