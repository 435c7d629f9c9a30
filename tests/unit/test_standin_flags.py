"""The stand-in's KubeSolo grammar comes from the image's one flag table
(docs/kubesolo.md "Command line"), the table stage 90 merges by: its ints
are kingpin v2's .Int(), its bools the new ones too, and its --help-long
lists exactly the table, in kingpin v2's format. The expected messages
are kingpin's own, as a kingpin v2 program with KubeSolo's flags prints them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.build import kubesolo_flags

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "build/standin/kubesolo"
KUBESOLO_SH = REPO / "build/rootfs/usr/lib/kubesolo-os/kubesolo.sh"  # stage 90's helpers
TABLE = kubesolo_flags.TABLE
IN_IMAGE = "/usr/lib/kubesolo-os/kubesolo-flags"


def standin(*argv: str, table: Path = TABLE) -> subprocess.CompletedProcess[str]:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox not found: install busybox-static (README test command does)")
    return subprocess.run(
        [busybox, "sh", str(STANDIN), *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KUBESOLO_FLAGS_TABLE": str(table)},
        check=False,
    )


def error(message: str) -> str:
    return f"kubesolo: error: {message}, try --help"


def test_stage90_and_the_standin_read_the_one_table_the_image_carries():
    """Neither keeps a list of its own: both default to the table's path in
    the image (where build/rootfs lands), the override is for host tests."""
    default = f"KUBESOLO_FLAGS_TABLE:-{IN_IMAGE}}}"
    assert default in STANDIN.read_text()
    assert default in KUBESOLO_SH.read_text()
    assert REPO / "build/rootfs" / IN_IMAGE.lstrip("/") == TABLE
    for text in (STANDIN.read_text(), KUBESOLO_SH.read_text()):
        assert "KUBESOLO_BOOL_FLAGS" not in text and "local-storage:bool" not in text


def test_help_long_lists_exactly_the_table_in_kingpins_format():
    done = standin("--help-long")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kubesolo [<flags>]\n")
    assert kubesolo_flags.parse_help(done.stdout) == {
        name: kubesolo_flags.Flag(name, "bool" if flag.kind == "bool" else "value", flag.envvar)
        for name, flag in kubesolo_flags.load_table().items()
    }
    lines = done.stdout.splitlines()
    assert (
        "  --[no-]load-balancer           KubeSolo's bool flag. ($KUBESOLO_LOAD_BALANCER)" in lines
    )
    assert "  --mtu=MTU                      KubeSolo's int flag. ($KUBESOLO_MTU)" in lines


def test_help_is_kingpins_usage_on_stderr():
    done = standin("--help")
    assert done.returncode == 0 and done.stdout == ""
    assert done.stderr == standin("--help-long").stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--load-balancer"],
        ["--no-load-balancer", "--pprof-server"],
        ["--full", "--d2k", "--d2k-namespace", "apps", "--print-config"],
        ["--no-metrics-server", "--metrics-bind-address=127.0.0.1:9105"],
        ["--system-reserved", "cpu=1,memory=500Mi", "--reserved-cpus=0-1"],
        ["--config", "/etc/kubesolo/config.yaml", "--no-container-mode"],
        ["--load-balancer-ip=10.0.2.15", "--local-storage-shared-path", "/mnt/shared"],
        ["--"],
    ],
)
def test_the_tables_flags_are_accepted(argv):
    done = standin(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"[kubesolo-standin] accepted: {' '.join(argv)}\n"


# kingpin v2's .Int() parses with Go's strconv.ParseFloat (then truncates).
@pytest.mark.parametrize(
    "value", ["600", "-1", "1.5", "1e3", ".5", "0x1p4", "0xffp-4", "1_000", "inf", "NaN", "1e-400"]
)
def test_an_int_flag_takes_what_kingpin_takes(value):
    done = standin(f"--startup-timeout={value}", "--mtu", value.lstrip("-"))
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "invalid syntax"),
        ("", "invalid syntax"),
        ("600s", "invalid syntax"),
        ("0x1", "invalid syntax"),  # a hexadecimal float needs its p exponent
        ("1e", "invalid syntax"),
        ("_1", "invalid syntax"),
        ("1__0", "invalid syntax"),
        ("+nan", "invalid syntax"),
        (".", "invalid syntax"),
        ("1e309", "value out of range"),
        ("1.7976931348623159e308", "value out of range"),
        ("0x1p1024", "value out of range"),
    ],
)
def test_an_int_flag_rejects_a_non_number_as_kingpin_does(value, problem):
    done = standin(f"--mtu={value}")
    assert done.returncode == 1
    assert done.stderr.strip() == error(f'strconv.ParseFloat: parsing "{value}": {problem}')


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--load-balancer", "true"], "unexpected true"),
        (["--pprof-server=true"], "unexpected true"),
        (["--mtu"], "expected argument for flag '--mtu'"),
        (["--mtu", "-1"], "expected argument for flag '--mtu'"),  # a word with - is a flag
        (["--no-mtu"], "unknown long flag '--no-mtu'"),
        (["--load-balancer", "--no-load-balancer"], "flag 'load-balancer' cannot be repeated"),
        (["--mtu", "1", "--mtu=2"], "flag 'mtu' cannot be repeated"),
        # setValues goes in order: the first of a repeat and a bad number wins
        (["--debug", "--debug", "--mtu", "x"], "flag 'debug' cannot be repeated"),
        (["--mtu", "x", "--debug", "--debug"], 'strconv.ParseFloat: parsing "x": invalid syntax'),
        (["--mtu", "1", "stray"], "unexpected stray"),
        (["--", "--debug"], "unexpected --debug"),
        (["--version", "--bogus"], "unknown long flag '--bogus'"),  # KubeSolo reads it after Parse
        (["--help", "--mtu=x"], None),  # --help before the values' errors
    ],
)
def test_the_standin_orders_kingpins_errors(argv, message):
    done = standin(*argv)
    if message is None:
        assert done.returncode == 0 and done.stderr.startswith("usage: kubesolo")
    else:
        assert (done.returncode, done.stderr.strip()) == (1, error(message))


@pytest.mark.parametrize(
    "argv", [["--help-long", "--bogus"], ["--help-long=x"], ["--no-help-long"]]
)
def test_help_long_is_a_pre_action(argv):
    """kingpin prints the long help for the flags parsed before an error."""
    done = standin(*argv)
    assert done.returncode == 0
    assert done.stdout == standin("--help-long").stdout


def test_the_standin_follows_its_table(tmp_path):
    table = tmp_path / "kubesolo-flags"
    table.write_text("# a grammar of two flags\nhelp bool -\nwidth int KUBESOLO_WIDTH\n")
    assert standin("--width", "3", table=table).returncode == 0
    assert standin("--debug", table=table).stderr.strip() == error("unknown long flag '--debug'")
    assert set(kubesolo_flags.parse_help(standin("--help-long", table=table).stdout)) == {
        "help",
        "width",
    }


def test_without_its_table_the_standin_says_so(tmp_path):
    done = standin("--debug", table=tmp_path / "none")
    assert done.returncode == 2
    assert "cannot read its flag table" in done.stderr
