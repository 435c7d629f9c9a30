"""Node configuration is data (docs/boot-flow.md "Node configuration is data"):
the OS's real readers and checks, run on the host under busybox sh (the
guest's shell) with their paths pointed into a temporary directory. Every
payload tries to create a canary file; the canary never exists, a bad value
is one warning naming its origin and key, and good values come back exactly."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build/rootfs/usr/lib/kubesolo-os"
BUSYBOX = shutil.which("busybox")
WARN = "[kubesolo-init] [WARN] "
LIBS = f". {LIB}/functions.sh; . {LIB}/network.sh; . {LIB}/kubesolo.sh; "


def busybox_sh(
    script: str, *args: str | bytes, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run a script under busybox sh in `cwd`, the OS's paths pointed there."""
    if BUSYBOX is None:
        pytest.fail("busybox not found: install busybox-static (README test command does)")
    base = {
        "PATH": "/usr/bin:/bin",
        "KUBESOLO_RUN": str(cwd / "run"),
        "KUBESOLO_DATA_MNT": str(cwd / "data"),
        "CLOUD_INIT_AWK": str(LIB / "cloud-init.awk"),
        "KUBESOLO_FLAGS_TABLE": str(LIB / "kubesolo-flags"),
    }
    return subprocess.run(
        [BUSYBOX, "sh", "-c", script, "sh", *args],
        capture_output=True,
        cwd=cwd,
        env={**base, **(env or {})},
        check=False,
        timeout=60,
    )


def warnings(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    lines = done.stderr.decode(errors="replace").splitlines()
    return [line.removeprefix(WARN) for line in lines if line.startswith(WARN)]


def payloads(canary: Path) -> list[str]:
    """Ways a value could become code: substitutions, separators, quotes
    that close the quoting of an assignment, a newline."""
    return [
        f"$(touch {canary})",
        f"`touch {canary}`",
        f";touch {canary};",
        f"'; touch {canary}; '",
        f'"; touch {canary}; "',
        f"|touch {canary}",
        f"&& touch {canary}",
        f"${{x:-$(touch {canary})}}",
        f"\ntouch {canary}\n",
    ]


def yaml_single_quoted(value: str) -> str:
    """A YAML single-quoted scalar: the flattener takes it verbatim."""
    return "'" + value.replace("'", "''") + "'"


CLOUD_INIT_FIELDS = ("interface", "address", "gateway", "dns")
GOOD_CLOUD_INIT = {
    "interface": "eth0",
    "address": "10.0.2.50/24",
    "gateway": "10.0.2.2",
    "dns": "10.0.2.3",
}
READ_AND_CHECK_CLOUD_INIT = (
    LIBS + 'cloud_init_network "$1"; echo "read=$?"; '
    'check_network "$1" network.interface network.mode network.address network.gateway '
    'network.dns; echo "checked=$?"; printf "%s\\0" "$NET_IFACE" "$NET_ADDRESS" '
    '"$NET_GATEWAY" "$NET_DNS" > values'
)


def cloud_init_yaml(values: dict[str, str]) -> str:
    lines = ["#cloud-config", "network:"]
    lines += [f"  {key}: {yaml_single_quoted(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("field", CLOUD_INIT_FIELDS)
def test_cloud_init_values_never_run(tmp_path, field):
    """A hostile value in any network field is read as the text it is, never
    run; the check rejects it with exactly one warning that names the file
    and the key; so stage 50 moves on (to DHCP)."""
    canary = tmp_path / "canary"
    for payload in payloads(canary):
        if "\n" in payload:  # a YAML scalar is one line
            continue
        config = tmp_path / "cloud-init.yaml"
        config.write_text(cloud_init_yaml({**GOOD_CLOUD_INIT, field: payload}))
        done = busybox_sh(READ_AND_CHECK_CLOUD_INIT, str(config), cwd=tmp_path)
        assert not canary.exists(), f"{field}: {payload!r} ran"
        assert b"read=0" in done.stdout and b"checked=1" in done.stdout, done
        values = dict(
            zip(CLOUD_INIT_FIELDS, (tmp_path / "values").read_bytes().split(b"\0")[:4], strict=True)
        )
        assert values[field] == payload.encode()
        warned = warnings(done)
        assert len(warned) == 1, warned
        assert warned[0].startswith(f'{config}: network.{field} "'), warned


def test_good_cloud_init_passes_the_check(tmp_path):
    config = tmp_path / "cloud-init.yaml"
    config.write_text(cloud_init_yaml(GOOD_CLOUD_INIT))
    done = busybox_sh(READ_AND_CHECK_CLOUD_INIT, str(config), cwd=tmp_path)
    assert b"read=0" in done.stdout and b"checked=0" in done.stdout, done
    assert warnings(done) == []


def test_warning_shows_a_value_escaped_and_cut(tmp_path):
    """The console never gets a hostile value raw: control bytes, non-ASCII,
    quotes and backslashes are \\xHH, and a long value is cut."""
    value = '\x1b[31m"red"\\ é\n[kubesolo-init] [OK] fake' + "x" * 500
    done = busybox_sh(LIBS + 'warn_bad origin key "$1" "is bad"', value, cwd=tmp_path)
    (line,) = done.stderr.decode().splitlines()
    shown = r"\x1b[31m\x22red\x22\x5c \xc3\xa9\x0a[kubesolo-init] [OK] fakexxxxxxxxxxxx"
    assert line == f'{WARN}origin: key "{shown[:61]}..." is bad; ignored'


SAVED_NETWORK = """# edited by hand
NET_IFACE='eth0'
NET_ADDRESS='$(touch {canary})'
touch {canary}
NET_DNS="$(touch {canary})"
NET_GATEWAY=`touch {canary}`
NET_MODE='static'; touch {canary}
PATH='/nowhere'
"""


def test_saved_network_file_is_never_run(tmp_path):
    """The saved configuration (`interfaces.sh`) is read, not sourced: a
    command line in it, a command substitution in a value and an assignment
    of another variable are each one warning and do nothing; the file is not
    used (stage 50 moves on)."""
    canary = tmp_path / "canary"
    saved = tmp_path / "data/network/interfaces.sh"
    saved.parent.mkdir(parents=True)
    saved.write_text(SAVED_NETWORK.format(canary=canary))
    done = busybox_sh(
        LIBS + 'read_saved_network; echo "read=$?"; echo "PATH=$PATH";'
        ' check_network "$NETWORK_SAVED" NET_IFACE NET_MODE NET_ADDRESS NET_GATEWAY NET_DNS;'
        ' echo "checked=$?"',
        cwd=tmp_path,
    )
    assert not canary.exists()
    out = done.stdout.decode()
    assert "read=1" in out and "PATH=/usr/bin:/bin" in out and "checked=1" in out, done
    warned = warnings(done)
    assert [w.split('"')[0] for w in warned] == [
        f"{saved}: line 4 ",
        f"{saved}: line 5 ",
        f"{saved}: line 6 ",
        f"{saved}: line 7 ",
        f"{saved}: line 8 ",
        f"{saved}: NET_ADDRESS ",
    ]
    assert "is not an IPv4 address/prefix" in warned[-1]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        "it's",
        "'",
        "'\\''",
        "two\nlines",
        "trailing newlines\n\n",
        "\n",
        "$(touch canary) `touch canary` ;|&*?[a]",
        "tab\tcr\r\x01é",
        "NAME='x'\nOTHER='y'",
    ],
)
def test_save_var_then_read_assignments_round_trip(tmp_path, value):
    """save_var writes NAME='value'; read_assignments gives back the same
    bytes, newlines included, and runs nothing."""
    done = busybox_sh(
        LIBS + 'save_var V "$1" f; read_assignments f V; printf "%s" "$V" > back',
        value,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done
    assert (tmp_path / "back").read_bytes() == value.encode()
    assert warnings(done) == []
    assert not (tmp_path / "canary").exists()


def test_read_assignments_line_forms(tmp_path):
    """Blank and # lines are skipped; NAME='value' may be followed by blanks
    (CRLF files) and a bare value of safe characters needs no quotes."""
    (tmp_path / "f").write_bytes(b"# c\n\nA='a b'\r\nB=10.0.2.50/24\nC='c'  \t\n")
    done = busybox_sh(
        LIBS + 'read_assignments f A B C; printf "%s|" "$?" "$A" "$B" "$C"', cwd=tmp_path
    )
    assert done.stdout == b"0|a b|10.0.2.50/24|c|"
    assert warnings(done) == []


def stage10(tmp_path: Path, cmdline: str) -> tuple[dict[str, str], list[str]]:
    """Run stage 10 on a command line; its boot.env read back by the OS's
    own reader (load_boot_env), and its warnings."""
    (tmp_path / "cmdline").write_text(cmdline + "\n")
    names = (
        "KUBESOLO_DATA_DEV KUBESOLO_DEBUG KUBESOLO_SHELL KUBESOLO_NOPERSIST "
        "KUBESOLO_CLOUDINIT KUBESOLO_EXTRA_FLAGS"
    )
    done = busybox_sh(
        f". {LIB}/functions.sh; . {LIB}/init.d/10-parse-cmdline.sh; "
        f"unset {names}; load_boot_env; "
        f'for n in {names}; do eval "printf \'%s=%s\\0\' $n \\"\\${{$n-unset}}\\""; done',
        env={"KUBESOLO_CMDLINE_FILE": str(tmp_path / "cmdline")},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done
    env = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item)
    return env, warnings(done)


def test_stage10_hostile_parameters_are_ignored(tmp_path):
    """Boot parameters with shell in them: nothing runs, each bad one is one
    warning naming it, and its variable keeps its default."""
    canary = tmp_path / "canary"
    cmdline = (
        f'console=ttyS0 kubesolo.nopersist kubesolo.flags="--debug $(touch {canary})" '
        f"kubesolo.cloudinit='$(touch {canary})' kubesolo.data=\"`touch {canary}`\" "
        f"kubesolo.$(touch{canary})"
    )
    env, warned = stage10(tmp_path, cmdline)
    assert not canary.exists()
    assert (env["KUBESOLO_EXTRA_FLAGS"], env["KUBESOLO_CLOUDINIT"], env["KUBESOLO_DATA_DEV"]) == (
        "",
        "",
        "",
    )
    assert env["KUBESOLO_NOPERSIST"] == "1"
    cmdline_file = tmp_path / "cmdline"
    keys = [re.match(rf"{re.escape(str(cmdline_file))}: (.*?) \"", w) for w in warned]
    assert [k.group(1) if k else w for k, w in zip(keys, warned, strict=True)] == [
        "word",
        "kubesolo.cloudinit",
        "kubesolo.data",
        "boot parameter",
    ]
    assert warned[0].endswith("; kubesolo.flags ignored")


def test_stage10_good_parameters_are_kept(tmp_path):
    env, warned = stage10(
        tmp_path,
        "kubesolo.data=UUID=0a1b-2c3d kubesolo.cloudinit=/etc/kubesolo/site/n.yaml "
        'kubesolo.flags="--node-ip 10.0.2.15 --apiserver-extra-sans=a.example,10.0.2.15"',
    )
    assert warned == []
    assert env["KUBESOLO_DATA_DEV"] == "UUID=0a1b-2c3d"
    assert env["KUBESOLO_CLOUDINIT"] == "/etc/kubesolo/site/n.yaml"
    assert (
        env["KUBESOLO_EXTRA_FLAGS"]
        == "--node-ip 10.0.2.15 --apiserver-extra-sans=a.example,10.0.2.15"
    )


def test_flag_words_all_or_nothing(tmp_path):
    """A flag list with one bad word is dropped whole (one warning): half a
    list could leave a flag without its value, which KubeSolo rejects."""
    script = LIBS + 'flag_words origin "all ignored" "$1"'
    good = busybox_sh(script, "--path=/x  --node-ip 10.0.2.15", cwd=tmp_path)
    assert good.stdout == b"--path=/x  --node-ip 10.0.2.15\n" and warnings(good) == []
    bad = busybox_sh(script, "--path * --debug $(touch canary)", cwd=tmp_path)
    assert bad.stdout == b""
    assert warnings(bad) == [
        'origin: word "*" is not a flag word (letters, digits and ._:/,=@+-); all ignored'
    ]
    assert not (tmp_path / "canary").exists()


GRAMMARS = {
    "is_ipv4": (
        ["10.0.2.15", "0.0.0.0", "255.255.255.255"],
        [
            "",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1.2.3.4/24",
            "a.b.c.d",
            "1.2.3.-4",
        ],
    ),
    "is_ipv4_cidr": (
        ["10.0.2.50/24", "10.0.0.0/8", "1.2.3.4/32", "1.2.3.4/0"],
        [
            "10.0.2.50",
            "10.0.2.50/",
            "10.0.2.50/33",
            "10.0.2.50/024",
            "/24",
            "1.2.3.4/24/1",
            "1.2.3.4/2a",
            "1.2.3/24",
        ],
    ),
    "is_iface_name": (
        ["eth0", "enp0s3", "wlan0", "br_lan", "eth0.100", "a" * 15],
        ["", "a" * 16, "-eth0", ".eth0", "eth 0", "eth0;x", "eth/0", "eth:0", "$(x)"],
    ),
    "is_hostname": (
        ["kubesolo-123456", "a", "node1", "a" * 63, "1abc"],
        ["", "a" * 64, "Node", "-node", "node-", "node.example", "node_1", "nöde"],
    ),
    "is_host": (
        ["10.0.2.97", "time.example.org", "NTP1.example", "a-b.c"],
        ["", "-x", "a..b", ".a", "a.", "a_b", "a b", "x.-y", "x-.y", "a" * 64 + ".x", "$(x)"],
    ),
    "is_module_name": (
        ["br_netfilter", "xt_MASQUERADE", "nf-nat", "9p"],
        ["", "-r", "_x", "a b", "a/b", "a.ko", "*", "$(x)"],
    ),
    "is_flag_word": (
        [
            "--path=/var/lib/kubesolo",
            "--apiserver-extra-sans",
            "a.example,10.0.2.15",
            "900",
            "key+/=",
        ],
        ["", "*", "a b", "$(x)", "`x`", "a;b", "a|b", "'a'", '"a"', "a\\b", "é"],
    ),
    "is_edge_value": (
        ["5f2c9a1e-7b3d-4c6a-9e8f-0a1b2c3d4e5f", "aHR0cHM6Ly9w+/==", "a", "a" * 512, "x_y.z"],
        ["", "a" * 513, "a b", "$(x)", "a;b", "a,b", "a:b", "'a'", "é", "a@b"],
    ),
    "is_device_spec": (
        ["/dev/vda", "/dev/disk/by-id/virtio-x_1", "LABEL=KSOLODATA", "UUID=0a1B-2c3d"],
        ["", "/dev/", "vda", "LABEL=", "LABEL=a b", "UUID=xyz", "/dev/$(x)", "label=KSOLODATA"],
    ),
    "is_abs_path": (
        ["/etc/kubesolo/cloud-init.yaml", "/a/b+c_d-e.yml", "/"],
        ["", "etc/x.yaml", "/a b", "/$(x)", "/a;b", "~/x"],
    ),
}


@pytest.mark.parametrize("check", GRAMMARS)
def test_grammars(tmp_path, check):
    """docs/boot-flow.md "Node configuration is data": each grammar accepts
    its examples and rejects the rest."""
    good, bad = GRAMMARS[check]
    script = LIBS + f'for v in "$@"; do {check} "$v" && echo 1 || echo 0; done'
    done = busybox_sh(script, *good, *bad, cwd=tmp_path)
    verdicts = done.stdout.decode().split()
    assert dict(zip([*good, *bad], verdicts, strict=True)) == {
        **{v: "1" for v in good},
        **{v: "0" for v in bad},
    }


# ---- whole stages on the host: the real stage files in a temporary root ----
# busybox ash runs its own applets before anything on PATH, so the commands
# that would change the machine are shell functions (which come first); and
# the stages run in new user, network and UTS namespaces, so that a command
# that slipped through could not touch the host's network or hostname.
STUBS = """
ip() { echo "ip $*" >> "$CALLS"; }
udhcpc() { echo "udhcpc $*" >> "$CALLS"; }
modprobe() { echo "modprobe $*" >> "$CALLS"; }
hostname() {
    if [ $# -gt 0 ]; then echo "hostname $*" >> "$CALLS"; echo "$1" > "$CALLS.hostname"
    else cat "$CALLS.hostname"; fi
}
hwclock() { echo "hwclock $*" >> "$CALLS"; return 1; }
rdate() { echo "rdate $*" >> "$CALLS"; return 1; }
timeout() { shift; "$@"; }
# init's supervisor starts KubeSolo once here; its restarts are the boot suite's
# (tests/boot/test_boot_supervisor.py)
supervise_kubesolo() { "$@"; }
"""
ISOLATE = ("unshare", "--user", "--map-root-user", "--net", "--uts")


class RootedOS:
    """A copy of the OS's shell files whose absolute paths (/usr/lib/kubesolo-os,
    /etc, /sys/class/net, /usr/local/bin) point into a temporary root; the
    commands that change a machine (ip, udhcpc, modprobe, hostname, hwclock,
    rdate) are stubs that log their arguments, and init's supervisor runs
    KubeSolo once."""

    def __init__(self, root: Path, lib: Path = LIB) -> None:
        self.root = root
        self.calls = root / "calls"
        self.lib = root / "usr/lib/kubesolo-os"
        for source in lib.rglob("*"):
            if source.is_file():
                target = self.lib / source.relative_to(lib)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(self._rooted(source.read_text()))
        for name, index in (("lo", 1), ("eth0", 2)):
            (root / "sys/class/net" / name).mkdir(parents=True)
            (root / "sys/class/net" / name / "ifindex").write_text(f"{index}\n")
            (root / "sys/class/net" / name / "address").write_text("52:54:00:12:34:56\n")
        (root / "etc/kubesolo").mkdir(parents=True)
        (root / "run").mkdir()
        (root / "data/network").mkdir(parents=True)
        (root / "usr/local/bin").mkdir(parents=True)
        (root / "usr/local/bin/kubesolo").write_text((REPO / "build/standin/kubesolo").read_text())
        (root / "usr/local/bin/kubesolo").chmod(0o755)

    def _rooted(self, text: str) -> str:
        for path in ("/usr/lib/kubesolo-os/", "/etc/", "/sys/class/net", "/usr/local/bin/"):
            text = text.replace(path, f"{self.root}{path}")
        # the kernel's hostname is the one the hostname stub was given
        return text.replace("/proc/sys/kernel/hostname", f"{self.calls}.hostname")

    def run(self, *stages: str, env: dict[str, str] | None = None):
        """Run stages as init does: boot.env loaded before each, one subshell each."""
        script = (
            STUBS
            + f". {self.lib}/functions.sh; "
            + "".join(
                f"( load_boot_env; . {self.lib}/init.d/{stage} ) || echo 'STAGE FAILED' >&2; "
                for stage in stages
            )
        )
        if BUSYBOX is None:
            pytest.fail("busybox not found: install busybox-static (README test command does)")
        return subprocess.run(
            [*ISOLATE, BUSYBOX, "sh", "-c", script],
            capture_output=True,
            cwd=self.root,
            env={
                "PATH": "/usr/bin:/bin",
                "CALLS": str(self.calls),
                "KUBESOLO_RUN": str(self.root / "run"),
                "KUBESOLO_DATA_MNT": str(self.root / "data"),
                "CLOUD_INIT_AWK": str(self.lib / "cloud-init.awk"),
                # the stand-in's table (the copied stage files find theirs)
                "KUBESOLO_FLAGS_TABLE": str(self.lib / "kubesolo-flags"),
                **(env or {}),
            },
            check=False,
            timeout=120,
        )

    def logged(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def rooted(tmp_path) -> RootedOS:
    return RootedOS(tmp_path)


HOSTILE_CLOUD_INIT = """#cloud-config
network:
  interface: $(touch {canary})
  address: '"; touch {canary}; "'
  gateway: ;touch {canary};
  dns: ['`touch {canary}`', "$(touch {canary})"]
"""


def test_stage80_names_the_directory_it_cannot_create(rooted):
    """docs/boot-flow.md "Stage 80 — Containerd": a directory it cannot
    create fails the stage, and the error names it."""
    (rooted.root / "etc/cni").write_text("a file where a directory belongs")
    done = rooted.run("80-containerd.sh")
    cannot = f"[kubesolo-init] [ERROR] cannot create {rooted.root}/etc/cni/net.d"
    assert cannot in done.stderr.decode().splitlines()
    assert "STAGE FAILED" in done.stderr.decode()


def test_stage50_hostile_cloud_init_falls_back_to_dhcp(rooted):
    """Stage 50 with a cloud-init file whose every network field is shell:
    nothing runs, one warning per field, DHCP on the primary interface, and
    nothing is saved for the next boot. (Before the fix stage 50 eval'ed
    NET_ADDRESS="..." lines built from these values.)"""
    canary = rooted.root / "canary"
    config = rooted.root / "etc/kubesolo/cloud-init.yaml"
    config.write_text(HOSTILE_CLOUD_INIT.format(canary=canary))
    done = rooted.run("50-network.sh")
    assert not canary.exists()
    assert [w.split(" ")[1] for w in warnings(done)] == [
        f"network.{field}" for field in CLOUD_INIT_FIELDS
    ]
    assert all(w.startswith(f"{config}: ") for w in warnings(done))
    assert "udhcpc -i eth0 -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script" in rooted.logged()
    assert not any(call.startswith("ip addr add") for call in rooted.logged())
    assert not (rooted.root / "data/network/interfaces.sh").exists()


def test_stage50_saved_config_round_trip(rooted):
    """A good cloud-init configuration is applied and saved as NAME='value'
    lines; the next boot reads it back as data and applies the same."""
    config = rooted.root / "etc/kubesolo/cloud-init.yaml"
    config.write_text((REPO / "fixtures/cloud-init/static.yaml").read_text())
    first = rooted.run("50-network.sh")
    assert warnings(first) == [], first
    applied = [c for c in rooted.logged() if c.startswith(("ip addr add", "ip route"))]
    assert applied == [
        "ip addr add 10.0.2.50/24 dev eth0",
        "ip route replace default via 10.0.2.2 dev eth0",
    ]
    saved = (rooted.root / "data/network/interfaces.sh").read_text()
    assert "NET_ADDRESS='10.0.2.50/24'\n" in saved
    config.unlink()
    rooted.calls.unlink()
    second = rooted.run("50-network.sh")
    assert warnings(second) == [], second
    assert [c for c in rooted.logged() if c.startswith(("ip addr add", "ip route"))] == applied
    assert b"(from saved)" in second.stderr
    assert (rooted.root / "etc/resolv.conf").read_text() == "nameserver 10.0.2.3\n"


def test_stage50_hostile_saved_config_is_not_used(rooted):
    """A saved configuration with a command line and shell in a value: nothing
    runs, each bad line and each bad value is one warning, and stage 50
    moves on (DHCP here)."""
    canary = rooted.root / "canary"
    saved = rooted.root / "data/network/interfaces.sh"
    saved.write_text(SAVED_NETWORK.format(canary=canary))
    done = rooted.run("50-network.sh")
    assert not canary.exists()
    keys = [w.removeprefix(f"{saved}: ").split(' "')[0] for w in warnings(done)]
    assert keys == ["line 4", "line 5", "line 6", "line 7", "line 8", "NET_ADDRESS"]
    assert any(call.startswith("udhcpc -i eth0") for call in rooted.logged())


HOSTILE_LINES = "$(touch {c}) `touch {c}` ;touch{c}; *"


def test_stages_10_to_90_with_hostile_node_files(rooted):
    """Hostile boot parameters, saved hostname, modules.list, time-servers and
    extra-flags: nothing runs, each bad entry is a warning naming its file,
    and KubeSolo (the stand-in) accepts the command line it gets."""
    canary = rooted.root / "canary"
    (rooted.root / "cmdline").write_text(
        f'kubesolo.nopersist kubesolo.flags="--debug $(touch {canary})" '
        f"kubesolo.cloudinit='$(touch {canary})'\n"
    )
    etc = rooted.root / "etc/kubesolo"
    hostile = HOSTILE_LINES.format(c=canary)
    (etc / "hostname").write_text(f"$(touch {canary})\n")
    (etc / "modules.list").write_text(f"{hostile}\nbr_netfilter\n")
    (etc / "time-servers").write_text(f"{hostile}\n10.0.2.97\n")
    (etc / "extra-flags").write_text(f"--node-ip 10.0.2.15 {hostile}\n")
    (rooted.lib / "modules.list").write_text("overlay\n")
    done = rooted.run(
        "10-parse-cmdline.sh",
        "30-kernel-modules.sh",
        "60-hostname.sh",
        "70-clock.sh",
        "90-kubesolo.sh",
        env={"KUBESOLO_CMDLINE_FILE": str(rooted.root / "cmdline")},
    )
    assert not canary.exists()
    assert b"STAGE FAILED" not in done.stderr, done.stderr.decode()
    origins = [w.split(":")[0] for w in warnings(done) if w.startswith(str(rooted.root))]
    bad_words = len(hostile.split())
    assert origins == [
        str(rooted.root / "cmdline"),  # kubesolo.flags
        str(rooted.root / "cmdline"),  # kubesolo.cloudinit
        *[str(etc / "modules.list")] * bad_words,
        str(etc / "hostname"),
        *[str(etc / "time-servers")] * bad_words,
        str(etc / "extra-flags"),
    ]
    assert "modprobe -qa br_netfilter" in rooted.logged()  # the list, in one modprobe
    assert "modprobe br_netfilter" in rooted.logged()  # then alone: no /sys/module here
    assert "hostname kubesolo-123456" in rooted.logged()
    accepted = "[kubesolo-standin] accepted: --path /var/lib/kubesolo --local-storage"
    assert accepted.encode() in done.stdout, done
    # stage 60's hostname; the flags of the hostile files are all left out
    assert f"{accepted} --apiserver-extra-sans kubesolo-123456\n".encode() in done.stdout


# ---- properties (hypothesis): arbitrary values through the real parsers ----
# Fixed seed; KUBESOLO_HYPOTHESIS_EXAMPLES=N runs N examples per property
# (the nightly mode) instead of the default, sized for about a minute in all.
NIGHTLY_EXAMPLES = int(os.environ.get("KUBESOLO_HYPOTHESIS_EXAMPLES", "0"))
CANARY = "CANARY"  # payloads touch it in the working directory of the shell
PAYLOADS = [
    f"$(touch {CANARY})",
    f"`touch {CANARY}`",
    f";touch {CANARY};",
    f"'; touch {CANARY}; '",
    f'"; touch {CANARY}; "',
    f"|touch {CANARY}",
    f"&&touch {CANARY}",
    f"\ntouch {CANARY}\n",
    f"$(touch${{IFS}}{CANARY})",
    f"'$(touch {CANARY})'",
    f"\\$(touch {CANARY})",
    f"'\\''$(touch {CANARY})'\\''",
]
SPECIALS = ["'", '"', "'\\''", "\\", "$", "*", "?", "[", "]", "#", "=", " ", "\t", "\r", "\n"]
SPECIALS += ["é", "\u00a0", "\u2028", "日本", "\U0001f600", "x" * 5000]


def examples(default: int) -> settings:
    return settings(
        max_examples=NIGHTLY_EXAMPLES or default,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def hostile_text(exclude: str = "", min_size: int = 0) -> st.SearchStrategy[str]:
    """Text made of arbitrary characters (no NUL), shell payloads and the
    characters that matter to a shell, without the characters of `exclude`."""
    characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\0" + exclude)
    pieces = st.one_of(
        st.text(characters, max_size=12),
        st.sampled_from([p for p in PAYLOADS if not set(p) & set(exclude)]),
        st.sampled_from([s for s in SPECIALS if not set(s) & set(exclude)]),
    )
    return st.lists(pieces, min_size=min_size, max_size=6).map("".join)


@contextlib.contextmanager
def in_scratch(
    script: str, *args: str | bytes
) -> Iterator[tuple[subprocess.CompletedProcess[bytes], Path]]:
    """Run a script in a fresh directory, given back for the files the script
    wrote (and the canary, which must not be there); removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="kubesolo-prop-"))
    try:
        yield busybox_sh(script, *args, cwd=scratch), scratch
    finally:
        shutil.rmtree(scratch)


def no_canary(scratch: Path) -> None:
    assert not (scratch / CANARY).exists(), "a payload ran"


# The grammars of docs/boot-flow.md "Node configuration is data", written
# again in Python: the shell's checks must agree with them on any input.
def ref_ipv4(v: str) -> bool:
    parts = v.split(".")
    octet = re.compile(r"0|[1-9][0-9]{0,2}")
    return len(parts) == 4 and all(octet.fullmatch(p) and int(p) <= 255 for p in parts)


def ref_ipv4_cidr(v: str) -> bool:
    address, slash, prefix = v.partition("/")
    return (
        bool(slash)
        and bool(re.fullmatch(r"0|[1-9][0-9]?", prefix))
        and (int(prefix) <= 32 and ref_ipv4(address))
    )


def ref_dns_name(v: str) -> bool:
    label = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
    return 0 < len(v) <= 253 and all(label.fullmatch(part) for part in v.split("."))


REFERENCE = {
    "is_ipv4": ref_ipv4,
    "is_ipv4_cidr": ref_ipv4_cidr,
    "is_iface_name": lambda v: bool(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}", v)),
    "is_hostname": lambda v: bool(re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", v)),
    "is_host": lambda v: ref_ipv4(v) or ref_dns_name(v),
    "is_module_name": lambda v: bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", v)),
    "is_flag_word": lambda v: bool(re.fullmatch(r"[A-Za-z0-9._:/,=@+-]+", v)),
    "is_edge_value": lambda v: bool(re.fullmatch(r"[A-Za-z0-9._+/=-]{1,512}", v)),
    "is_device_spec": lambda v: bool(
        re.fullmatch(r"/dev/[A-Za-z0-9._/-]+|LABEL=[A-Za-z0-9._-]+|UUID=[0-9A-Fa-f-]+", v)
    ),
    "is_abs_path": lambda v: bool(re.fullmatch(r"/[A-Za-z0-9._/+-]*", v)),
}
# Values near each grammar: its own characters, digits, dots and slashes,
# mixed with anything.
NEAR = "0123456789./-_:=,@+aAzZfF" + "LABEL=UUID=/dev/"
near_grammar = st.one_of(
    st.text(st.sampled_from(NEAR), max_size=20),
    st.builds(
        lambda a, b: f"{a}.{b}",
        st.integers(0, 300).map(str),
        st.lists(st.integers(0, 300).map(str), max_size=4).map(".".join),
    ),
    st.builds(
        lambda a, p: f"{a}/{p}",
        st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,3}){3}", fullmatch=True),
        st.integers(0, 40),
    ),
    st.from_regex(r"[a-z0-9-]{1,70}(\.[A-Za-z0-9-]{1,70}){0,4}", fullmatch=True),
    hostile_text(),
)


@pytest.mark.parametrize("check", REFERENCE)
@examples(80)
@given(values=st.lists(near_grammar, min_size=1, max_size=40))
def test_property_grammars_agree_with_reference(check, values):
    """Each shell check accepts exactly what its grammar accepts."""
    values = [v for v in values if "\n" not in v]  # one verdict per line
    script = LIBS + f'for v in "$@"; do {check} "$v" && echo 1 || echo 0; done'
    with in_scratch(script, *values) as (done, scratch):
        no_canary(scratch)
        verdicts = done.stdout.decode().split()
        assert len(verdicts) == len(values), done
        for value, verdict in zip(values, verdicts, strict=True):
            assert (verdict == "1") is REFERENCE[check](value), (check, value)


@examples(400)
@given(
    value=st.one_of(st.binary().filter(lambda b: b"\0" not in b), hostile_text().map(str.encode))
)
def test_property_save_var_then_read_round_trips(value):
    """save_var then read_assignments: any bytes but NUL come back exactly,
    newlines and quotes included, and nothing runs."""
    with in_scratch(
        LIBS + 'save_var V "$1" f && read_assignments f V && printf "%s" "$V" > back', value
    ) as (done, scratch):
        no_canary(scratch)
        assert done.returncode == 0, done
        assert (scratch / "back").read_bytes() == value


LISTED = ("A", "B")
quoted_value = hostile_text().map(lambda v: "'" + v.replace("'", "'\\''") + "'")
assignment_line = st.one_of(
    st.just(""),
    hostile_text(exclude="\n").map(lambda t: "# " + t),
    st.builds(
        lambda n, v, b: f"{n}={v}{b}",
        st.sampled_from([*LISTED, "PATH", "X", "A B", "1A"]),
        st.one_of(quoted_value, st.text(st.sampled_from("aZ09._/:,@+-"), max_size=8)),
        st.sampled_from(["", " ", "\t "]),
    ),
    st.builds(lambda n, v: f"{n}={v}", st.sampled_from(LISTED), hostile_text()),
    hostile_text(),
)


@examples(300)
@given(lines=st.lists(assignment_line, max_size=6))
def test_property_read_assignments_agrees_with_the_shell(lines):
    """Any file: the reader runs nothing, assigns only the names it is given
    and leaves everything else alone; a file it accepts whole is one sh
    would run as plain assignments, with the same values."""
    text = "\n".join(lines) + "\n"
    report = 'printf "%s\\0" "$rc" "${A-unset}" "${B-unset}" "${X-unset}" "$PATH" > out'
    with in_scratch(
        LIBS + f'printf "%s" "$1" > f; read_assignments f {" ".join(LISTED)}; rc=$?; {report}',
        text,
    ) as (read, scratch):
        no_canary(scratch)
        rc, a, b, x, path = (scratch / "out").read_bytes().split(b"\0")[:5]
        assert (x, path) == (b"unset", b"/usr/bin:/bin")
        if rc != b"0":
            assert warnings(read), "a rejected file names its bad line"
            return
    with in_scratch(f'printf "%s" "$1" > f; . ./f; rc=0; {report}', text) as (sourced, scratch):
        no_canary(scratch)
        assert (scratch / "out").read_bytes().split(b"\0")[1:3] == [a, b], sourced


# One kernel parameter: a bare word or a double-quoted group.
cmdline_param = st.one_of(
    hostile_text(exclude=' \t\n"', min_size=1),
    hostile_text(exclude='"\n').map(lambda v: f'"{v}"'),
)


@examples(250)
@given(params=st.lists(cmdline_param, min_size=1, max_size=8))
def test_property_cmdline_words_split_as_the_kernel_groups_them(params):
    """Stage 10's splitter: blanks separate parameters, double quotes group
    them and are dropped; every other byte is kept and nothing runs."""
    with in_scratch(
        LIBS + 'printf "%s\\n" "$1" > cmdline; cmdline_words cmdline > words', " ".join(params)
    ) as (done, scratch):
        no_canary(scratch)
        expected = [p.strip('"') for p in params]
        expected = [w for w in expected if w]
        assert (scratch / "words").read_bytes().decode().split("\n")[:-1] == expected, done


cmdline_value = hostile_text(exclude=' \t\n"')
STAGE10_NAMES = (
    "KUBESOLO_DATA_DEV KUBESOLO_DEBUG KUBESOLO_SHELL KUBESOLO_NOPERSIST "
    "KUBESOLO_CLOUDINIT KUBESOLO_EXTRA_FLAGS"
)


@examples(200)
@given(
    data=st.one_of(cmdline_value, st.sampled_from(["/dev/vda", "LABEL=KSOLODATA", "UUID=ab-12"])),
    cloudinit=st.one_of(cmdline_value, st.just("/etc/kubesolo/site/node.yaml")),
    flags=st.one_of(hostile_text(exclude='"\n'), st.just("--node-ip 10.0.2.15 --debug")),
)
def test_property_stage10_parameters(data, cloudinit, flags):
    """Stage 10 on any values: nothing runs; a value that fits its grammar
    is saved and read back exactly, any other is one warning and the
    default."""
    cmdline = (
        f"kubesolo.nopersist kubesolo.data={data} kubesolo.cloudinit={cloudinit}"
        f' kubesolo.flags="{flags}"'
    )
    with in_scratch(
        f". {LIB}/functions.sh; printf '%s\\n' \"$1\" > cmdline; KUBESOLO_CMDLINE_FILE=cmdline; "
        f". {LIB}/init.d/10-parse-cmdline.sh; unset {STAGE10_NAMES}; load_boot_env; "
        'printf "%s\\0" "$KUBESOLO_DATA_DEV" "$KUBESOLO_CLOUDINIT" "$KUBESOLO_EXTRA_FLAGS" > out',
        cmdline,
    ) as (done, scratch):
        no_canary(scratch)
        assert done.returncode == 0, done
        flag_ok = all(REFERENCE["is_flag_word"](w) for w in re.split(r"[ \t]+", flags) if w)
        expected = [
            data if REFERENCE["is_device_spec"](data) else "",
            cloudinit if REFERENCE["is_abs_path"](cloudinit) else "",
            flags if flag_ok else "",
        ]
        assert (scratch / "out").read_bytes().split(b"\0")[:3] == [v.encode() for v in expected]
        bad = [
            key
            for key, value, ok in zip(
                ("kubesolo.data", "kubesolo.cloudinit", "kubesolo.flags"),
                (data, cloudinit, flags),
                (REFERENCE["is_device_spec"](data), REFERENCE["is_abs_path"](cloudinit), flag_ok),
                strict=True,
            )
            if not ok
        ]
        assert len(warnings(done)) == len(bad), warnings(done)


yaml_key = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
# A plain (unquoted) scalar: no blanks at its ends, no comment (" #"), and
# not starting with a quote, "[", "#" or "- ".
plain_scalar = hostile_text(exclude="\n", min_size=1).filter(
    lambda v: (
        v != ""
        and v == v.strip(" \t\r")
        and not re.search(r"[ \t]#", v)
        and not v.startswith(("'", '"', "[", "#"))
    )
)


@examples(250)
@given(
    key=yaml_key,
    value=hostile_text(exclude="\n"),
    plain=plain_scalar,
    style=st.sampled_from(["map", "list"]),
)
def test_property_flattener_round_trips_values(key, value, plain, style):
    """cloud-init.awk: a single-quoted scalar ('' for a quote) of any text
    without a newline, and a plain scalar, come out exactly, as one
    key=value line each; nothing runs."""
    quoted = "'" + value.replace("'", "''") + "'"
    if style == "map":
        yaml = f"network:\n  {key}: {quoted}\n  other: {plain}\n"
        expected = [f"network.{key}={value}", f"network.other={plain}"]
    else:
        yaml = f"network:\n  {key}:\n    - {quoted}\n    - {plain}\n"
        expected = [f"network.{key}={value}", f"network.{key}={plain}"]
    with in_scratch(
        f'printf "%s" "$1" > c.yaml; awk -f {LIB}/cloud-init.awk c.yaml > flat', yaml
    ) as (done, scratch):
        no_canary(scratch)
        assert (scratch / "flat").read_bytes().decode().split("\n")[:-1] == expected, done


@examples(250)
@given(
    fields=st.fixed_dictionaries(
        {
            "interface": st.one_of(hostile_text(exclude="\n"), st.just("eth0")),
            "address": st.one_of(hostile_text(exclude="\n"), st.just("10.0.2.50/24")),
            "gateway": st.one_of(hostile_text(exclude="\n"), st.just("10.0.2.2")),
        }
    ),
    dns=st.lists(st.one_of(hostile_text(exclude="\n"), st.just("10.0.2.3")), max_size=3),
)
def test_property_cloud_init_network(fields, dns):
    """cloud_init_network then check_network on any values: nothing runs,
    the values are read exactly, and the check warns once for each field
    that is not in its grammar (and passes the file when none is)."""
    lines = ["network:"] + [f"  {k}: {yaml_single_quoted(v)}" for k, v in fields.items()]
    lines += ["  dns:"] + [f"    - {yaml_single_quoted(v)}" for v in dns]
    with in_scratch(
        f'printf "%s" "$1" > c.yaml; {READ_AND_CHECK_CLOUD_INIT.replace(chr(36) + "1", "c.yaml")}',
        "\n".join(lines) + "\n",
    ) as (done, scratch):
        no_canary(scratch)
        joined = ""
        for server in dns:
            joined = f"{joined} {server}" if joined else server
        values = (scratch / "values").read_bytes().split(b"\0")[:4]
        in_order = (fields["interface"], fields["address"], fields["gateway"], joined)
        assert values == [v.encode() for v in in_order]
        if not fields["address"]:
            assert b"read=1" in done.stdout
            return
        bad = [
            not (fields["interface"] == "" or REFERENCE["is_iface_name"](fields["interface"])),
            not ref_ipv4_cidr(fields["address"]),
            not (fields["gateway"] == "" or ref_ipv4(fields["gateway"])),
            not all(ref_ipv4(w) for w in re.split(r"[ \t\n]+", joined) if w),
        ]
        assert len(warnings(done)) == sum(bad), warnings(done)
        assert (b"checked=0" in done.stdout) is not any(bad), done


EDGE_KEYS = ("edge-id", "edge-key")


@examples(150)
@given(
    values=st.fixed_dictionaries(
        {key: st.one_of(hostile_text(exclude="\n"), st.just("id-0+/=")) for key in EDGE_KEYS}
    ),
    async_value=st.one_of(st.sampled_from(["true", "false"]), hostile_text(exclude="\n")),
)
def test_property_cloud_init_portainer(values, async_value):
    """Stage 90's Portainer Edge settings on any values: nothing runs, a
    value in its grammar becomes its flag byte for byte, and each other
    value is one warning naming the key."""
    lines = ["portainer:"] + [f"  {k}: {yaml_single_quoted(v)}" for k, v in values.items()]
    lines.append(f"  edge-async: {yaml_single_quoted(async_value)}")
    with in_scratch(
        'printf "%s" "$1" > c.yaml; '
        + LIBS
        + 'cloud_init_portainer c.yaml; printf "%s" "$PORTAINER_FLAGS" > flags',
        "\n".join(lines) + "\n",
    ) as (done, scratch):
        no_canary(scratch)
        expected = [
            f"--portainer-{k}={v}" for k, v in values.items() if REFERENCE["is_edge_value"](v)
        ]
        expected += {
            "true": ["--portainer-edge-async"],
            "false": ["--no-portainer-edge-async"],
        }.get(async_value, [])
        assert (scratch / "flags").read_bytes().decode().split(" ")[1:] == expected
        bad = [k for k, v in values.items() if not REFERENCE["is_edge_value"](v)]
        bad += [] if async_value in ("true", "false") else ["edge-async"]
        warned = warnings(done)
        assert [w.split(" ")[1] for w in warned] == [f"portainer.{k}" for k in bad]
        for line in warned:  # the key is a secret, even a bad one
            if line.split(" ")[1] == "portainer.edge-key":
                assert line.split(" ")[2] == '"<redacted>"', line


flag_value = hostile_text(exclude=" \t\n").filter(lambda v: v != "" and not v.startswith("-"))


@examples(200)
@given(
    value=flag_value, other=flag_value, hostname=st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True)
)
def test_property_kubesolo_args_carry_values_exactly(value, other, hostname):
    """Stage 90's merge on any flag values: never globbed or evaluated, each
    value is one argument, byte for byte, and the later source wins."""
    with in_scratch(
        LIBS + 'kubesolo_args "$1" "$2" "$3" > args',
        hostname,
        f"--node-ip {other} --path={other}",
        f"--path {value} --node-ip={value}",
    ) as (done, scratch):
        no_canary(scratch)
        assert (scratch / "args").read_bytes().decode().split("\n")[:-1] == [
            "--local-storage",
            "--apiserver-extra-sans",
            hostname,
            "--path",
            value,
            f"--node-ip={value}",
        ], done
