"""Node configuration is data (docs/boot-flow.md "Node configuration is data"):
the OS's real readers and checks, run on the host under busybox sh (the
guest's shell) with their paths pointed into a temporary directory. Every
payload tries to create a canary file; the canary never exists, a bad value
is one warning naming its origin and key, and good values come back exactly."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "build/rootfs/usr/lib/kubesolo-os"
BUSYBOX = shutil.which("busybox")
WARN = "[kubesolo-init] [WARN] "
LIBS = f". {LIB}/functions.sh; . {LIB}/network.sh; "


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
"""
ISOLATE = ("unshare", "--user", "--map-root-user", "--net", "--uts")


class RootedOS:
    """A copy of the OS's shell files whose absolute paths (/usr/lib/kubesolo-os,
    /etc, /sys/class/net, /usr/local/bin) point into a temporary root; the
    commands that change a machine (ip, udhcpc, modprobe, hostname, hwclock,
    rdate) are stubs that log their arguments."""

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
        return text

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
    runs, each bad line is a warning, and stage 50 moves on (DHCP here)."""
    canary = rooted.root / "canary"
    saved = rooted.root / "data/network/interfaces.sh"
    saved.write_text(SAVED_NETWORK.format(canary=canary))
    done = rooted.run("50-network.sh")
    assert not canary.exists()
    assert len(warnings(done)) == 5, warnings(done)
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
    assert "modprobe br_netfilter" in rooted.logged()
    assert "hostname kubesolo-123456" in rooted.logged()
    accepted = "[kubesolo-standin] accepted: --path /var/lib/kubesolo --local-storage"
    assert accepted.encode() in done.stdout, done
