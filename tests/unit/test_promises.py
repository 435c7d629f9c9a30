"""The boot flow's promised values in the OS's source tree and in the harness's
guest contract, checked without a VM against the literals of
tests/boot/promised.py (docs/promises.md "Promises"). The boot suite proves
the same values on a booted guest; these fail in a second when a value in
`build/` or `harness/guest.py` drifts from docs/boot-flow.md."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from promised_values import P

from harness import guest
from harness.build import boot_menu

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
LIB = BUILD / "rootfs/usr/lib/kubesolo-os"


def list_words(path: Path) -> list[str]:
    return [w for line in path.read_text().splitlines() for w in line.split("#", 1)[0].split()]


# ---- Bootloader ----------------------------------------------------------------------
def test_isolinux_menu_is_the_promised_one():
    """docs/boot-flow.md "Bootloader": TIMEOUT 30 (3 s), DEFAULT kubesolo, the
    serial menu, a SAY line naming the labels, and each label's kernel,
    initramfs and exact command line, as the builder writes it from the table."""
    menu = boot_menu.load(BUILD / "boot-menu.toml")
    top, labels = P.isolinux_directives(boot_menu.isolinux_cfg(menu))
    assert top["TIMEOUT"] == str(P.SPEC_TIMEOUT_TENTHS)
    assert top["DEFAULT"] == P.SPEC_DEFAULT_LABEL
    for key, value in P.SPEC_MENU_DIRECTIVES.items():
        assert top[key] == value, key
    assert all(name in top["SAY"].replace(",", " ").split() for name in P.SPEC_SAY_NAMES)
    assert list(labels) == list(P.SPEC_LABELS)
    for label, directives in labels.items():
        assert directives == {
            "KERNEL": P.SPEC_KERNEL,
            "INITRD": P.SPEC_INITRD,
            "APPEND": P.SPEC_APPEND[label],
        }, label


# ---- Overview ------------------------------------------------------------------------
def test_stages_in_the_image_are_the_promised_ones_in_order():
    """docs/boot-flow.md "Overview": init.d holds the ten stages, which
    /sbin/init runs in name order (00-80 by its glob, then 90)."""
    stages = sorted(p.name for p in (LIB / "init.d").iterdir())
    assert tuple(stages) == P.SPEC_STAGES
    init = (BUILD / "rootfs/sbin/init").read_text()
    assert '"$LIB"/init.d/[0-8][0-9]-*.sh' in init
    assert '. "$LIB/init.d/90-kubesolo.sh"' in init


# ---- Stage 30 ------------------------------------------------------------------------
def test_stage30_module_list_is_the_promised_one():
    """docs/boot-flow.md "Stage 30 — Kernel Modules": the image's list, 28
    modules, in the table's order."""
    assert tuple(list_words(LIB / "modules.list")) == P.SPEC_STAGE30_MODULES
    assert len(P.SPEC_STAGE30_MODULES) == 28


def test_boot_module_list_is_the_promised_one():
    """docs/boot-flow.md "Stage 00 — Early Mount" (coldplug): the drivers the
    image carries for its disk, NIC and shares."""
    assert tuple(list_words(BUILD / "boot-modules.list")) == P.SPEC_BOOT_MODULES


# ---- Stage 40 ------------------------------------------------------------------------
def test_sysctl_file_is_the_promised_one():
    """docs/boot-flow.md "Stage 40 — Sysctl": the five keys and values, nothing else."""
    pairs = {}
    for line in (BUILD / "rootfs/etc/sysctl.d/k8s.conf").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    assert pairs == P.SPEC_SYSCTLS


# ---- Stage 60 ------------------------------------------------------------------------
def test_image_etc_hosts_is_the_promised_one():
    """docs/boot-flow.md "Stage 60 — Hostname": the image's /etc/hosts."""
    lines = (BUILD / "rootfs/etc/hosts").read_text().splitlines()
    assert tuple(lines) == P.SPEC_ETC_HOSTS


def sh(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.fail("busybox not found: install busybox-static (scripts/setup.sh does)")
    return subprocess.run(
        [busybox, "sh", "-c", script, "sh", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "KUBESOLO_FLAGS_TABLE": str(LIB / "kubesolo-flags")},
        check=False,
    )


@pytest.mark.parametrize(
    "mac", ["52:54:00:12:34:56", "52:54:00:AB:CD:EF", "00:00:00:00:00:00", "000000000000"]
)
def test_hostname_rule(mac):
    """docs/boot-flow.md "Stage 60 — Hostname": kubesolo- and the MAC's last
    six hex digits, lowercase; the all-zero MAC (no interface) gives
    kubesolo-000000."""
    done = sh(f". {LIB}/functions.sh; hostname_from_mac {mac}")
    assert done.stdout.strip() == P.spec_hostname(mac)
    if set(mac) <= {"0", ":"}:
        assert done.stdout.strip() == P.SPEC_HOSTNAME_WITHOUT_NIC


# ---- Stage 50 ------------------------------------------------------------------------
@pytest.mark.parametrize("prefix", P.SPEC_VIRTUAL_IFACE_PREFIXES)
def test_virtual_interface_prefixes(prefix):
    """docs/boot-flow.md "Stage 50 — Network": every promised virtual kind is
    skipped (`lo` and names starting with the prefix); a NIC name is not."""
    script = f". {LIB}/functions.sh; . {LIB}/network.sh; is_virtual_iface"
    assert sh(f'{script} "$1"', prefix + "0").returncode == 0
    assert sh(f"{script} lo").returncode == 0
    assert sh(f"{script} eth0").returncode == 1


# ---- Stage 90 ------------------------------------------------------------------------
def test_stage90_defaults_are_the_promised_ones():
    """docs/boot-flow.md "Stage 90 — KubeSolo": with no extra flags KubeSolo
    gets exactly the three defaults, the hostname as the SAN."""
    done = sh(f'. {LIB}/functions.sh; . {LIB}/kubesolo.sh; kubesolo_args "$@"', "node-1", "", "")
    assert done.stdout.split() == P.spec_default_flags("node-1")


def test_stage90_precedence_is_the_promised_one():
    """docs/boot-flow.md "Stage 90 — KubeSolo": the doc's own example, word
    for word (boot parameter > flags file > defaults, SANs joined)."""
    file_flags = "--no-local-storage --path=/var/lib/kubesolo --apiserver-extra-sans node.example"
    cmdline_flags = "--local-storage --apiserver-extra-sans=10.0.2.15 --debug"
    done = sh(
        f'. {LIB}/functions.sh; . {LIB}/kubesolo.sh; kubesolo_args "$@"',
        "kubesolo-123456",
        file_flags,
        cmdline_flags,
    )
    assert done.stdout.split() == [
        "--path=/var/lib/kubesolo",
        "--local-storage",
        "--apiserver-extra-sans",
        "kubesolo-123456,node.example,10.0.2.15",
        "--debug",
    ]


# ---- Boot markers --------------------------------------------------------------------
@pytest.mark.parametrize("stage", P.SPEC_STAGES)
def test_harness_markers_match_the_promised_lines(stage):
    """docs/boot-flow.md "Boot markers": the harness's regular expressions
    match the promised lines (and only the right stage's)."""
    assert re.fullmatch(guest.stage_started(stage), P.spec_started(stage))
    assert re.fullmatch(guest.stage_done(stage), P.spec_done(stage))
    assert re.fullmatch(guest.stage_failed(stage), P.spec_failed(stage))
    assert re.match(guest.ERROR_MARKER, P.spec_failed(stage))
    other = P.SPEC_STAGES[P.SPEC_STAGES.index(stage) - 1]
    assert not re.fullmatch(guest.stage_done(stage), P.spec_done(other))


def test_harness_success_and_error_markers_are_the_promised_ones():
    """docs/boot-flow.md "Boot markers": the success marker is stage 90's OK
    line; [ERROR] and [WARN] lines carry the init prefix."""
    assert re.fullmatch(guest.BOOT_MARKER, P.SPEC_BOOT_MARKER)
    assert not re.search(guest.BOOT_MARKER, P.spec_done("80-containerd.sh"))
    assert re.match(guest.ERROR_MARKER, P.SPEC_ERROR_PREFIX + " anything")
    assert re.match(guest.WARN_MARKER, P.SPEC_WARN_PREFIX + " anything")
    assert re.fullmatch(guest.EMERGENCY_PROMPT, P.SPEC_EMERGENCY_PROMPT)
    assert re.fullmatch(guest.SHELL_PROMPT, P.SPEC_SHELL_PROMPT)


# ---- Stage 10 ------------------------------------------------------------------------
def test_stage10_unknown_parameter_is_one_warning_and_ignored(tmp_path):
    """docs/boot-flow.md "Stage 10 — Parse Cmdline": any other `kubesolo.*`
    word is ignored with one warning that names it; the six variables keep
    what the known parameters say."""
    (tmp_path / "cmdline").write_text("kubesolo.data=/dev/vdb kubesolo.bogus=1 kubesolo.debug\n")
    busybox = shutil.which("busybox") or "busybox"
    done = subprocess.run(
        [busybox, "sh", "-c", f". {LIB}/functions.sh; . {LIB}/init.d/10-parse-cmdline.sh"],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "KUBESOLO_RUN": str(tmp_path / "run"),
            "KUBESOLO_CMDLINE_FILE": str(tmp_path / "cmdline"),
        },
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith(P.SPEC_WARN_PREFIX)]
    assert len(warnings) == 1 and "kubesolo.bogus" in warnings[0], done.stderr
    assert P.spec_parameters_line("/dev/vdb", debug=1) in done.stderr.splitlines()
