"""The boot-time gate's arithmetic and pictures (docs/architecture.md
"Boot-time gate"): which boots count, medians, what counts as slower, the
baseline file, and the SVG boot chart."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness import guest
from harness.boottime import gate
from harness.boottime.chart import Bar, chart_svg, tick_step
from harness.boottime.timeline import Stage


def boot(kernel: float = 1.0, each: float = 0.5, slow: dict[str, float] | None = None, plain=True):
    """A complete boot: the kernel's time, then every stage back to back."""
    stages, t = [], kernel
    for name in guest.STAGES:
        duration = (slow or {}).get(name, each)
        stages.append(Stage(name, round(t, 3), duration, True))
        t += duration
    return gate.BootRecord("vm0", plain, tuple(stages))


def test_the_promised_defaults():
    assert (gate.DEFAULT_THRESHOLD, gate.DEFAULT_MIN_SECONDS, gate.MIN_BOOTS) == (0.25, 0.5, 3)


def test_a_boot_measures_each_stage_the_kernel_and_the_total():
    m = boot(kernel=1.25, each=0.5).measures()
    assert m[gate.KERNEL] == 1.25
    assert m[gate.TOTAL] == 1.25 + 0.5 * 9  # stage 90 starts after nine stages
    assert [k for k in m if k not in (gate.KERNEL, gate.TOTAL)] == list(guest.STAGES)


def test_only_complete_plain_boots_count():
    failed = boot()
    failed = gate.BootRecord(
        "vm1", True, (*failed.stages[:2], Stage(guest.STAGES[2], 2.0, 0.1, False))
    )
    values, boots = gate.medians(
        [boot(each=0.5), boot(each=0.7), boot(each=9, plain=False), failed]
    )
    assert boots == 2 and values[guest.STAGES[4]] == 0.6


@pytest.mark.parametrize(("kernel_args", "base", "label", "how", "plain"), [
    ("", None, None, "kernel", True),
    ("", None, "kubesolo", "kernel", True),
    ("kubesolo.debug", None, None, "kernel", False),
    ("", "console=ttyS0", None, "kernel", False),
    ("", None, "kubesolo-debug", "kernel", False),
    ("", None, None, "iso", False),  # the 3 s menu is not the OS's time
])  # fmt: skip
def test_what_a_plain_boot_is(kernel_args, base, label, how, plain):
    assert gate.is_plain(kernel_args, base, label, how) is plain


def test_slower_means_past_the_share_and_the_floor():
    base = {"a": 1.0, "b": 4.0, "c": 0.2, "total": 10.0}
    now = {"a": 1.6, "b": 4.9, "c": 0.9, "total": 10.4}
    slower = gate.compare(now, base, threshold=0.25, min_seconds=0.5)
    # a: +60 % and +0.6 s; b: +22 % only; c: +350 % and +0.7 s; total: +4 %
    assert [s.measure for s in slower] == ["a", "c"]
    assert gate.compare(now, base, threshold=0.25, min_seconds=0.65) == [gate.Slower("c", 0.2, 0.9)]


def test_a_stage_slowed_by_two_seconds_fails_and_an_unchanged_run_passes():
    base_boots = [boot(each=0.5 + i / 100) for i in range(5)]
    baseline = gate.medians(base_boots)[0]
    passed, lines = gate.verdict([boot(each=0.52) for _ in range(3)], baseline, 0.25, 0.5)
    assert passed and lines[0].endswith("passed")
    slowed = [boot(each=0.52, slow={"40-sysctl.sh": 2.5}) for _ in range(3)]
    passed, lines = gate.verdict(slowed, baseline, 0.25, 0.5)
    assert not passed and lines[0].endswith("FAILED")
    bad = [line for line in lines if line.endswith("SLOWER |")]
    assert [line.split(" | ")[0] for line in bad] == ["| 40-sysctl.sh", "| total"]


def test_a_busier_machine_slows_every_stage_alike_and_passes():
    """Every stage and the kernel 60 % slower (another job on the cores): the
    speed factor is 1.6 and nothing is slower than expected; one stage slowed
    by 3.2 s on top of that still fails, and so does the total."""
    baseline = gate.medians([boot(each=0.5)] * 3)[0]
    busy = [boot(kernel=1.6, each=0.8)] * 3
    passed, lines = gate.verdict(busy, baseline, 0.25, 0.5)
    assert passed, lines
    assert "ran at 1.60x its time" in lines[0]
    busy_and_slowed = [boot(kernel=1.6, each=0.8, slow={"70-clock.sh": 4.0})] * 3
    passed, lines = gate.verdict(busy_and_slowed, baseline, 0.25, 0.5)
    assert not passed
    assert [line.split(" | ")[0] for line in lines if line.endswith("SLOWER |")] == [
        "| 70-clock.sh",
        "| total",
    ]


def test_the_speed_factor_is_a_median_of_the_longer_measures():
    base = {"kernel": 2.0, "a": 1.0, "b": 1.0, "tiny": 0.1, "total": 4.1}
    now = {"kernel": 3.0, "a": 1.5, "b": 9.0, "tiny": 0.9, "total": 14.4}
    assert gate.speed_factor(now, base) == 1.5  # kernel 1.5, a 1.5, b 9: tiny and total left out


def test_too_few_boots_are_not_compared():
    passed, lines = gate.verdict([boot(), boot()], {"total": 1.0}, 0.25, 0.5)
    assert not passed and "2 complete plain boots in this run, at least 3 needed" in lines[0]


def test_the_baseline_file_round_trips_and_bad_ones_are_one_line(tmp_path):
    path = tmp_path / "baseline.json"
    with pytest.raises(gate.GateError, match="at least 3 complete plain boots, got 1"):
        gate.save_baseline(path, [boot()])
    values = gate.save_baseline(path, [boot(), boot(each=0.6), boot(each=0.7)])
    assert gate.load_baseline(path) == values and json.loads(path.read_text())["boots"] == 3
    with pytest.raises(
        gate.GateError, match=r"nope.json: no such file \(write one: kubesolo-harness"
    ):
        gate.load_baseline(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text('{"medians": {"total": "fast"}}')
    with pytest.raises(gate.GateError, match=r"bad\.json: not a baseline file"):
        gate.load_baseline(tmp_path / "bad.json")


def test_tick_steps_are_round():
    assert [tick_step(s) for s in (0.9, 5.6, 12, 60)] == [0.2, 1, 2, 10]


def test_the_chart_is_svg_with_a_bar_per_stage():
    bars = gate.median_bars([boot(kernel=1.0, each=0.5)] * 3)
    svg = chart_svg("median of 3 plain boots", bars)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    titles = [t.text for t in root.iter(f"{ns}title")]
    assert len(titles) == 1 + len(guest.STAGES)
    assert titles[0] == "kernel: 0.00s + 1.00s" and titles[-1] == "90-kubesolo.sh: 5.50s + 0.50s"
    assert "median of 3 plain boots" in svg and "6s" in svg  # the axis reaches past 6 s


def test_one_boot_chart_colours_a_failed_and_an_open_stage():
    stages = [
        Stage("00-early-mount.sh", 1.0, 0.5, True),
        Stage("10-parse-cmdline.sh", 1.5, 0.2, False),
        Stage("20-persistent-mount.sh", 1.7, None, False),
    ]
    kinds = [b.kind for b in gate.boot_bars(stages)]
    assert kinds == ["kernel", "ok", "failed", "open"]
    assert chart_svg("x", [Bar("a<b", 0, 1)]).count("a&lt;b") == 2  # escaped
