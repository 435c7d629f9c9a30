"""Node configuration is data (docs/boot-flow.md "Node configuration is data"):
one node whose every configuration input holds shell — cloud-init, the saved
network configuration, the saved hostname, extra-flags, modules.list,
time-servers and the kernel command line — boots to KubeSolo, runs none of
it, warns once per bad value and falls back as documented."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from boot_guest import (
    GUEST_IP,
    boot_env,
    console_lines,
    ipv4_addresses,
    network_env,
    preseeded_data_disk,
    standin_argv,
    wait_for_kubesolo,
)

from harness import guest
from harness.vm.protocols import Target

pytestmark = pytest.mark.boot

ETC_KUBESOLO = dict(guest.BIND_MOUNTS)["etc-kubesolo"]
CLOUD_INIT = f"{ETC_KUBESOLO}/cloud-init.yaml"
MAC = "52:54:00:0b:ad:c0"
CANARY = "/tmp/pwned"
# Every way the old stage 50 ran a cloud-init value (it eval'ed NAME="value"):
# a command substitution, backticks, and a quote that ends the assignment.
PAYLOAD = f'x$(touch {CANARY})`touch {CANARY}`;touch {CANARY};"; touch {CANARY}; "'
HOSTILE_CLOUD_INIT = f"""#cloud-config
network:
  interface: {PAYLOAD}
  address: {PAYLOAD}
  gateway: {PAYLOAD}
  dns:
    - {PAYLOAD}
    - $(touch {CANARY})
"""
CLOUD_INIT_FIELDS = ("interface", "address", "gateway", "dns")
# The saved configuration used to be sourced: its line 4 was a command.
HOSTILE_SAVED_NETWORK = f"""# hand-edited
NET_IFACE='eth0'
NET_ADDRESS='$(touch {CANARY}2)'
touch {CANARY}3
"""
# One word each, so that each is one bad entry of a word list.
HOSTILE_WORDS = (
    f"$(touch${{IFS}}{CANARY}4)",
    f"`touch${{IFS}}{CANARY}4`",
    f";touch${{IFS}}{CANARY}4;",
    "*",
)
GOOD_MODULE = "br_netfilter"
GOOD_TIME_SERVER = "10.0.2.97"  # on-link, unowned: never answers
KERNEL_ARGS = (
    'kubesolo.flags="--debug $(touch /tmp/x)" '
    "kubesolo.cloudinit='$(touch /tmp/y)' "
    'kubesolo.data="$(touch /tmp/z)"'
)
CANARIES = [CANARY, f"{CANARY}2", f"{CANARY}3", f"{CANARY}4", "/tmp/x", "/tmp/y", "/tmp/z"]


@pytest.fixture(scope="module")
def node(session_machine_factory, tmp_path_factory) -> Iterator[Target]:
    """The hostile node, booted once for this module's tests."""
    disk = preseeded_data_disk(
        tmp_path_factory.mktemp("hostile-config"),
        {
            "etc-kubesolo/cloud-init.yaml": HOSTILE_CLOUD_INIT,
            "network/interfaces.sh": HOSTILE_SAVED_NETWORK,
            "etc-kubesolo/hostname": f"$(touch {CANARY}4)\n",
            "etc-kubesolo/extra-flags": f"--debug $(touch {CANARY}4)\n",
            "etc-kubesolo/modules.list": "\n".join([*HOSTILE_WORDS, GOOD_MODULE]) + "\n",
            "etc-kubesolo/time-servers": "\n".join([*HOSTILE_WORDS, GOOD_TIME_SERVER]) + "\n",
        },
    )
    vm = session_machine_factory(
        name="hostile-config", data_disk=disk, macs=(MAC,), kernel_args=KERNEL_ARGS
    )
    vm.start()
    wait_for_kubesolo(vm)
    yield vm
    vm.close()


def warnings(vm: Target) -> list[str]:
    """The init's [WARN] lines, without their prefix."""
    marker = re.compile(guest.WARN_MARKER + " ")
    return [marker.split(line, 1)[1] for line in console_lines(vm) if marker.search(line)]


def warnings_about(vm: Target, origin: str) -> list[str]:
    return [w.removeprefix(f"{origin}: ") for w in warnings(vm) if w.startswith(f"{origin}: ")]


def test_nothing_ran_and_kubesolo_started(node):
    """docs/boot-flow.md "Node configuration is data": with shell in every
    input the node boots to stage 90, KubeSolo (the stand-in) accepts its
    command line, and no payload ran: no canary file exists."""
    present = node.succeed(
        " ".join(f"test -e {c} && echo {c};" for c in CANARIES) + " true"
    ).split()
    assert present == []
    assert standin_argv(node)[:2] == ["--path", guest.KUBESOLO_PATH]


def test_cloud_init_one_warning_per_bad_field_then_dhcp(node):
    """docs/boot-flow.md "Node configuration is data": each network field of
    the cloud-init file is rejected with exactly one warning (the dns list,
    with two bad entries, too), the file's network is not used and DHCP
    configures the node; nothing is saved for the next boot."""
    about = warnings_about(node, CLOUD_INIT)
    keys = Counter(w.split(" ", 1)[0] for w in about)
    assert keys == Counter(f"network.{field}" for field in CLOUD_INIT_FIELDS), about
    env = network_env(node)
    assert env["NET_SOURCE"] == "dhcp"
    assert ipv4_addresses(node, env["NET_IFACE"]) == [f"{GUEST_IP}/24"]
    assert node.succeed(f"cat {guest.SAVED_NETWORK}") == HOSTILE_SAVED_NETWORK


def test_saved_network_file_is_read_not_run(node):
    """docs/boot-flow.md "Node configuration is data": the saved network
    configuration is read as assignments, never sourced: its command line and
    its bad address are one warning each, and the file is not used."""
    about = warnings_about(node, guest.SAVED_NETWORK)
    assert [w.split(' "')[0] for w in about] == ["line 4", "NET_ADDRESS"], about
    assert network_env(node)["NET_SOURCE"] != "saved"


def test_boot_parameters_with_shell_are_ignored(node):
    """docs/boot-flow.md "Node configuration is data": kubesolo.flags,
    kubesolo.cloudinit and kubesolo.data with shell in them are each one
    warning and keep their defaults; KubeSolo gets none of the flags."""
    about = warnings_about(node, "/proc/cmdline")
    assert [w.split(" ", 1)[0] for w in about] == ["word", "kubesolo.cloudinit", "kubesolo.data"]
    assert about[0].endswith("; kubesolo.flags ignored")
    env = boot_env(node)
    assert (env["KUBESOLO_EXTRA_FLAGS"], env["KUBESOLO_CLOUDINIT"]) == ("", "")
    assert env["KUBESOLO_DATA_DEV"] == f"LABEL={guest.DATA_LABEL}"
    assert "--debug" not in standin_argv(node)


def test_hostname_file_with_shell_is_replaced(node):
    """docs/boot-flow.md "Node configuration is data": a saved hostname that
    is not a lowercase RFC 1123 label is one warning; the node takes its
    MAC-derived name and saves it in its place."""
    assert len(warnings_about(node, f"{ETC_KUBESOLO}/hostname")) == 1
    name = "kubesolo-" + MAC.replace(":", "")[-6:]
    assert node.succeed("hostname").strip() == name
    assert node.succeed(f"cat {ETC_KUBESOLO}/hostname").strip() == name


@pytest.mark.parametrize(
    ("file", "key"), [("modules.list", "module name"), ("time-servers", "time server")]
)
def test_word_lists_skip_each_bad_word(node, file, key):
    """docs/boot-flow.md "Node configuration is data": each bad word of
    modules.list and time-servers is one warning and is skipped; the good
    one is used."""
    about = warnings_about(node, f"{ETC_KUBESOLO}/{file}")
    assert [w.split(' "')[0] for w in about] == [key] * len(HOSTILE_WORDS), about
    if file == "modules.list":
        node.succeed(f"test -d /sys/module/{GOOD_MODULE}")
    else:
        node.wait_for_console(
            rf"{guest.WARN_MARKER} no network time source answered \({GOOD_TIME_SERVER}\)",
            timeout=120,
        )


def test_extra_flags_with_shell_are_ignored_whole(node):
    """docs/boot-flow.md "Node configuration is data": a flags file with a
    bad word is one warning and none of its flags reach KubeSolo."""
    about = warnings_about(node, f"{ETC_KUBESOLO}/extra-flags")
    assert len(about) == 1 and about[0].endswith("; all flags of this file ignored"), about
    assert standin_argv(node) == [
        "--path",
        guest.KUBESOLO_PATH,
        "--local-storage",
        "--apiserver-extra-sans",
        node.succeed("hostname").strip(),
    ]
