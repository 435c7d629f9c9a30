"""Stage timeline from console text and arrival times."""

from harness.boottime.timeline import Stage, arrival_time, stage_timeline

LOG = (
    b"old boot [kubesolo-init] [INFO] Stage 00-early-mount.sh starting\n"
    b"[kubesolo-init] [INFO] Stage 00-early-mount.sh starting\n"
    b"[kubesolo-init] [OK] Stage 00-early-mount.sh complete\n"
    b"[kubesolo-init] [INFO] Stage 20-persistent-mount.sh starting\n"
    b"[kubesolo-init] [ERROR] Stage 20-persistent-mount.sh failed\n"
)


def test_arrival_time_of_an_offset():
    arrivals = [(10, 1.0), (20, 2.0)]
    assert arrival_time(0, arrivals) == 1.0
    assert arrival_time(10, arrivals) == 2.0
    assert arrival_time(99, arrivals) == 2.0


def test_timeline_of_the_current_boot_only():
    base = LOG.index(b"\n") + 1
    lines = [0]
    for line in LOG.splitlines(keepends=True):
        lines.append(lines[-1] + len(line))
    arrivals = [(end, float(i)) for i, end in enumerate(lines[1:])]
    stages = stage_timeline(LOG, arrivals, base)
    assert stages == [
        Stage("00-early-mount.sh", 0.0, 1.0, True),
        Stage("20-persistent-mount.sh", 2.0, 1.0, False),
    ]


def test_no_console_no_timeline():
    assert stage_timeline(b"", [], 0) == []
