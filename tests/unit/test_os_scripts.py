"""The OS's shell logic, run on the host under busybox sh (the guest's shell):
the stand-in's KubeSolo grammar, stage 90's command line, stage 10's
parameter parsing, the cloud-init subset and interface/hostname rules."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build/rootfs/usr/lib/kubesolo-os"
STANDIN = REPO / "build/standin/kubesolo"
TABLE = LIB / "kubesolo-flags"  # KubeSolo's flags, read by stage 90 and the stand-in
BUSYBOX = shutil.which("busybox")
REPEATED = "kubesolo: error: flag '{}' cannot be repeated, try --help"


def sh(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a script under busybox sh with positional arguments."""
    if BUSYBOX is None:
        pytest.fail("busybox not found: install busybox-static (README test command does)")
    return subprocess.run(
        [BUSYBOX, "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KUBESOLO_FLAGS_TABLE": str(TABLE), **(env or {})},
        check=False,
    )


def standin(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BUSYBOX or "sh", "sh", str(STANDIN), *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KUBESOLO_FLAGS_TABLE": str(TABLE)},
        check=False,
    )


def table_flags(kind: str) -> list[str]:
    """The names of the table's flags of one kind."""
    rows = [line.split("#", 1)[0].split() for line in TABLE.read_text().splitlines()]
    return [row[0] for row in rows if row and row[1] == kind]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--local-storage", "true"], "kubesolo: error: unexpected true, try --help"),
        (["--local-storage=true"], "kubesolo: error: unexpected true, try --help"),
        (["--path"], "kubesolo: error: expected argument for flag '--path', try --help"),
        (["--no-such-flag"], "kubesolo: error: unknown long flag '--no-such-flag', try --help"),
        (["-x"], "kubesolo: error: unknown short flag '-x', try --help"),
        (["stray"], "kubesolo: error: unexpected stray, try --help"),
        (["--no-path"], "kubesolo: error: unknown long flag '--no-path', try --help"),
        (["--path", "--debug"], "kubesolo: error: expected argument for flag '--path', try --help"),
        (["--path", "/a", "--path=/b"], REPEATED.format("path")),
        (["--debug", "--debug"], REPEATED.format("debug")),
        (["--local-storage", "--no-local-storage"], REPEATED.format("local-storage")),
        (
            ["--no-local-storage", "--path", "/x", "--local-storage"],
            REPEATED.format("local-storage"),
        ),
        # kingpin reports a parse error before a repeated flag, wherever it is
        (
            ["--debug", "--debug", "--bogus"],
            "kubesolo: error: unknown long flag '--bogus', try --help",
        ),
    ],
)
def test_standin_rejects_what_kubesolo_rejects(argv, error):
    """docs/kubesolo.md "Command line": kingpin's errors, exit 1."""
    done = standin(*argv)
    assert done.returncode == 1
    assert done.stderr.strip() == error
    assert "accepted" not in done.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--path", "/var/lib/kubesolo", "--local-storage"],
        ["--path=/x", "--no-local-storage", "--debug"],
        ["--apiserver-extra-sans", "a,b", "--node-ip=10.0.2.15", "--startup-timeout", "900"],
        [],
    ],
)
def test_standin_accepts_kubesolo_grammar(argv):
    done = standin(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"[kubesolo-standin] accepted: {' '.join(argv)}\n"


def kubesolo_args(hostname: str, file_flags: str = "", cmdline_flags: str = "") -> list[str]:
    done = sh(
        f'. {LIB}/functions.sh; . {LIB}/kubesolo.sh; kubesolo_args "$@"',
        hostname,
        file_flags,
        cmdline_flags,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# Stage 90's own flags, for a node named node-1.
DATA_PATH = ["--path", "/var/lib/kubesolo"]
LOCAL_STORAGE = ["--local-storage"]
HOST_SAN = ["--apiserver-extra-sans", "node-1"]
DEFAULTS = [*DATA_PATH, *LOCAL_STORAGE, *HOST_SAN]


def test_stage90_command_line_is_accepted_by_kubesolo_grammar():
    """Stage 90: --path, local storage as a bare boolean, the hostname as SAN,
    then the flags file's and the boot parameter's flags."""
    args = kubesolo_args("node-1", "--debug", "--node-ip 10.0.2.15")
    assert args == [*DEFAULTS, "--debug", "--node-ip", "10.0.2.15"]
    assert "true" not in args
    assert standin(*args).returncode == 0


@pytest.mark.parametrize(
    ("file_flags", "cmdline_flags", "expected"),
    [
        pytest.param(
            "--path /data/kubesolo",
            "",
            [*LOCAL_STORAGE, *HOST_SAN, "--path", "/data/kubesolo"],
            id="repeated-string-flag",
        ),
        pytest.param(
            "--no-local-storage",
            "",
            [*DATA_PATH, *HOST_SAN, "--no-local-storage"],
            id="no-X-after-default-X",
        ),
        pytest.param(
            "--startup-timeout 900 --no-local-storage",
            "--startup-timeout 1200 --local-storage",
            [*DATA_PATH, *HOST_SAN, "--startup-timeout", "1200", "--local-storage"],
            id="parameter-wins-over-file",
        ),
        pytest.param(
            "--path=/data/a",
            "--path=/data/b --node-ip=10.0.2.15",
            [*LOCAL_STORAGE, *HOST_SAN, "--path=/data/b", "--node-ip=10.0.2.15"],
            id="flag=value-forms",
        ),
        pytest.param(
            "--path=/data/a",
            "--path /data/b",
            [*LOCAL_STORAGE, *HOST_SAN, "--path", "/data/b"],
            id="flag=value-replaced-by-flag-value",
        ),
        pytest.param(
            "--apiserver-extra-sans=a.example,node-1",
            "--apiserver-extra-sans 10.0.2.15,a.example,b.example",
            [
                *DATA_PATH,
                *LOCAL_STORAGE,
                "--apiserver-extra-sans",
                "node-1,a.example,10.0.2.15,b.example",
            ],
            id="sans-joined",
        ),
        pytest.param(
            "--debug --debug",
            "--no-debug",
            [*DEFAULTS, "--no-debug"],
            id="repeated-within-a-source",
        ),
    ],
)
def test_stage90_merges_flags_by_name(file_flags, cmdline_flags, expected):
    """docs/boot-flow.md "Stage 90 — KubeSolo": a flag given again, or negated
    with --no-, replaces the earlier one (boot parameter > flags file >
    defaults); SANs are joined with the hostname's kept; KubeSolo's grammar
    (the stand-in) accepts the result."""
    args = kubesolo_args("node-1", file_flags, cmdline_flags)
    assert args == expected
    done = standin(*args)
    assert done.returncode == 0, done.stderr


def test_stage90_merges_load_balancer_and_its_negation_to_one():
    """docs/boot-flow.md "Stage 90 — KubeSolo": --load-balancer (a bool of the
    table) in the flags file, --no-load-balancer in kubesolo.flags=: KubeSolo
    gets the one --no-load-balancer, in the order of the later source."""
    args = kubesolo_args("node-1", "--load-balancer --debug", "--no-load-balancer --pprof-server")
    assert args == [*DEFAULTS, "--debug", "--no-load-balancer", "--pprof-server"]
    assert standin(*args).returncode == 0


@pytest.mark.parametrize("flag", table_flags("bool"))
def test_stage90_a_bool_of_the_table_never_swallows_the_next_word(flag):
    """docs/kubesolo.md "Command line": a bool takes no value, so the word
    after it is not its value: given again, the flag replaces itself and
    the word stays where it was (the stand-in then rejects that stray word,
    as KubeSolo would)."""
    args = kubesolo_args("node-1", f"--{flag} word --{flag}")
    assert args[-2:] == ["word", f"--{flag}"]
    assert args.count(f"--{flag}") == 1


def test_stage90_an_int_flag_takes_its_value_and_is_merged():
    """The table's ints (--mtu) take one value, as strings do."""
    args = kubesolo_args("node-1", "--mtu 1400", "--mtu=1450")
    assert args == [*DEFAULTS, "--mtu=1450"]
    assert standin(*args).returncode == 0


def test_stage90_without_the_table_passes_the_words_unmerged():
    """A missing table is said on the console; nothing is guessed or dropped."""
    done = sh(
        f'. {LIB}/functions.sh; . {LIB}/kubesolo.sh; kubesolo_args "$@"',
        "node-1",
        "--debug",
        "--debug",
        env={"KUBESOLO_FLAGS_TABLE": "/nonexistent"},
    )
    assert done.stdout.split() == [*DEFAULTS, "--debug", "--debug"]
    assert "/nonexistent missing" in done.stderr


@pytest.mark.parametrize(
    "flags",
    [
        "$(touch {canary})",
        "`touch {canary}`",
        "--path=$(touch {canary})",
        "--node-ip ;touch {canary}",
    ],
)
def test_stage90_flags_are_data(tmp_path, flags):
    """Stage 90: the words of the flags are never evaluated, nor globbed."""
    canary = tmp_path / "canary"
    args = kubesolo_args("node-1", flags.format(canary=canary), "*")
    assert not canary.exists()
    assert args[-1] == "*"


def test_stage90_flag_without_its_value_is_left_for_kubesolo_to_report():
    """Stage 90: a string flag followed by another flag has no value; the merge
    keeps it as given, and KubeSolo reports it (no guessing)."""
    args = kubesolo_args("node-1", "--node-ip --debug")
    assert args == [*DEFAULTS, "--node-ip", "--debug"]
    assert "expected argument for flag '--node-ip'" in standin(*args).stderr


def parse_cmdline(tmp_path: Path, cmdline: str) -> dict[str, str]:
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    run = tmp_path / "run"
    done = sh(
        f". {LIB}/functions.sh; . {LIB}/init.d/10-parse-cmdline.sh; cat $KUBESOLO_BOOT_ENV",
        env={"KUBESOLO_RUN": str(run), "KUBESOLO_CMDLINE_FILE": str(tmp_path / "cmdline")},
    )
    assert done.returncode == 0, done.stderr
    values = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        values[key] = value.strip("'")
    return values


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("kubesolo.data=LABEL=KSOLODATA", {"KUBESOLO_DATA_DEV": "LABEL=KSOLODATA"}),
        (
            "kubesolo.data=/dev/vdb kubesolo.debug",
            {"KUBESOLO_DATA_DEV": "/dev/vdb", "KUBESOLO_DEBUG": "1"},
        ),
        ("kubesolo.data=/dev/vda kubesolo.shell", {"KUBESOLO_SHELL": "1"}),
        ("kubesolo.nopersist", {"KUBESOLO_NOPERSIST": "1"}),
        (
            "kubesolo.data=/dev/vda kubesolo.cloudinit=/etc/kubesolo/ci.yaml",
            {"KUBESOLO_CLOUDINIT": "/etc/kubesolo/ci.yaml"},
        ),
        (
            'kubesolo.data=/dev/vda kubesolo.flags="--debug --node-ip 10.0.2.15" quiet',
            {"KUBESOLO_EXTRA_FLAGS": "--debug --node-ip 10.0.2.15"},
        ),
    ],
)
def test_stage10_parameters(tmp_path, cmdline, expected):
    """Stage 10's table: each parameter sets its variable."""
    values = parse_cmdline(tmp_path, cmdline)
    for key, value in expected.items():
        assert values[key] == value


def test_stage10_without_data_device_or_label_is_ram_only(tmp_path):
    """Stage 10: no kubesolo.data and no KSOLODATA partition -> RAM-only."""
    assert parse_cmdline(tmp_path, "console=ttyS0")["KUBESOLO_NOPERSIST"] == "1"


EXAMPLES = sorted((REPO / "fixtures/cloud-init").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_cloud_init_examples_parse(example):
    flat = sh(f"busybox awk -f {LIB}/cloud-init.awk {example}")
    assert flat.returncode == 0, flat.stderr
    assert all("=" in line for line in flat.stdout.splitlines())


def test_cloud_init_subset_flattens_maps_and_lists(tmp_path):
    (tmp_path / "c.yaml").write_text(
        '#cloud-config\nnetwork:\n  interface: eth0   # the uplink\n  address: "10.0.2.50/24"\n'
        "  gateway: 10.0.2.2\n  dns:\n    - 10.0.2.3\n    - 1.1.1.1\nother: [a, 'b']\n"
    )
    flat = sh(f"busybox awk -f {LIB}/cloud-init.awk {tmp_path / 'c.yaml'}").stdout.splitlines()
    assert flat == [
        "network.interface=eth0",
        "network.address=10.0.2.50/24",
        "network.gateway=10.0.2.2",
        "network.dns=10.0.2.3",
        "network.dns=1.1.1.1",
        "other=a",
        "other=b",
    ]


def test_cloud_init_network_settings(tmp_path):
    yaml = "network:\n  address: 10.0.2.50/24\n  gateway: 10.0.2.2\n  dns: [10.0.2.3, 9.9.9.9]\n"
    (tmp_path / "c.yaml").write_text(yaml)
    settings = sh(
        f". {LIB}/functions.sh; . {LIB}/network.sh; cloud_init_network {tmp_path}/c.yaml &&"
        ' printf "%s|" "$NET_IFACE" "$NET_MODE" "$NET_ADDRESS" "$NET_GATEWAY" "$NET_DNS"',
        env={"CLOUD_INIT_AWK": str(LIB / "cloud-init.awk")},
    )
    assert settings.returncode == 0, settings.stderr
    assert settings.stdout == "|static|10.0.2.50/24|10.0.2.2|10.0.2.3 9.9.9.9|"


@pytest.mark.parametrize(
    ("name", "virtual"),
    [
        ("lo", True),
        ("docker0", True),
        ("veth1234", True),
        ("br-abc", True),
        ("cni0", True),
        ("eth0", False),
        ("enp0s3", False),
        ("ens4", False),
    ],
)
def test_virtual_interfaces_are_skipped(name, virtual):
    """Stage 50: the uplink is never lo, docker, veth, br or cni."""
    done = sh(f". {LIB}/functions.sh; . {LIB}/network.sh; is_virtual_iface {name}")
    assert (done.returncode == 0) is virtual


@pytest.mark.parametrize(
    ("mac", "hostname"),
    [("52:54:00:12:34:56", "kubesolo-123456"), ("52:54:00:AB:CD:EF", "kubesolo-abcdef")],
)
def test_hostname_from_mac(mac, hostname):
    """Stage 60: kubesolo- and the last six hex digits of the MAC, lowercase."""
    assert sh(f". {LIB}/functions.sh; hostname_from_mac {mac}").stdout.strip() == hostname


def test_config_words_and_lines(tmp_path):
    """The one config-file reader of the stages (30, 60, 70, 90 read words;
    40 reads lines): # comments, blank lines, tabs and CRLF endings are no
    content; several files are read in order; a missing file is empty."""
    (tmp_path / "a").write_text("# a comment\n\tnet.a = 1  # why\r\n\n   \nnet.b=32768\t60999")
    (tmp_path / "b").write_text("--debug # on\n")
    missing = tmp_path / "missing"
    lines = sh(f". {LIB}/functions.sh; config_lines {tmp_path}/a {missing} {tmp_path}/b")
    assert lines.stdout.splitlines() == ["net.a = 1", "net.b=32768 60999", "--debug"]
    words = sh(f". {LIB}/functions.sh; read_config_words {missing} {tmp_path}/a {tmp_path}/b")
    assert words.stdout == "net.a = 1 net.b=32768 60999 --debug\n"
    assert sh(f". {LIB}/functions.sh; read_config_words {missing}").stdout == ""


def test_coldplug_loads_again_only_when_the_devices_change(tmp_path):
    """docs/boot-flow.md "Stage 00 — Early Mount" (coldplug): every device's
    modalias goes to modprobe, split and never globbed, again only when the
    set of devices changed; the caller's set -f stays as it was."""
    for device, alias in (("a", "pci:v00001AF4"), ("b", "dmi:/*")):
        (tmp_path / device).mkdir()
        (tmp_path / device / "modalias").write_text(alias + "\n")
    script = f""". {LIB}/functions.sh
    MODALIAS_FILES="{tmp_path}/*/modalias"
    modprobe() {{ echo "modprobe $*"; }}
    set -f
    load_device_drivers && echo loaded
    load_device_drivers || echo unchanged
    case $- in *f*) echo still-noglob ;; esac
    mkdir {tmp_path}/c && echo usb:v1D6B > {tmp_path}/c/modalias
    load_device_drivers && echo loaded
    """
    assert sh(script).stdout.splitlines() == [
        "modprobe -qa pci:v00001AF4 dmi:/*",
        "loaded",
        "unchanged",
        "still-noglob",
        "modprobe -qa pci:v00001AF4 dmi:/* usb:v1D6B",
        "loaded",
    ]


@pytest.mark.parametrize(("path", "mounted"), [("/proc", True), ("/proc/sys/kernel", False)])
def test_is_mounted(path, mounted):
    """Stages 00 and 20 skip what /proc/mounts lists (an exact path match)."""
    done = sh(f". {LIB}/functions.sh; is_mounted {path}")
    assert (done.returncode == 0) is mounted
