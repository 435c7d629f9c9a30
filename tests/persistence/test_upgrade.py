"""Upgrades (docs/architecture.md "Upgrades", docs/boot-flow.md "Stage 20 —
Persistent Mount"): a node that ran the previous release (--upgrade-from)
keeps its state when it boots this image on the same data disk, and runs
this image's KubeSolo even if an old binary sits in /usr/local/bin; and a
node taken back to the previous release boots with the state kept too."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from persistence_state import PERSISTENT_PATHS, Marker, probe_all

from harness import guest
from harness.artefact import Image
from harness.vm.protocols import Target

pytestmark = [
    pytest.mark.persistence,
    pytest.mark.qemu_only("boots two images on one data disk"),
]

CLOUD_INIT = Path(__file__).resolve().parents[2] / "fixtures" / "cloud-init" / "static.yaml"
STATIC_ADDRESS = "10.0.2.50/24"  # the address of static.yaml
HOSTNAME = "upgraded-node-1"
EXTRA_FLAGS = "--debug"
FLAGS_FILE = "/etc/kubesolo/extra-flags"
HOSTNAME_FILE = "/etc/kubesolo/hostname"
OLD_BINARY = "#!/bin/sh\necho an old kubesolo in /usr/local/bin\nexit 1\n"
FIRST_BOOT = "First boot on this data partition"
PROBES = ("hostname", "addresses", "default-route", "dns", "net-source")


@dataclass(frozen=True)
class NodeState:
    probes: dict[str, str]
    markers: dict[str, str | None]
    flags_file: str


def create_state(vm: Target, marker: Marker) -> None:
    """What a node of the previous release holds: a hostname, a static network
    from cloud-init, files under every persistent path, the extra flags file."""
    for path in PERSISTENT_PATHS:
        marker.write(vm, path)
    vm.succeed(f"echo {HOSTNAME} > {HOSTNAME_FILE}")
    vm.succeed(f"echo {EXTRA_FLAGS} > {FLAGS_FILE}")
    vm.succeed(f"printf '%s' {shlex.quote(CLOUD_INIT.read_text())} > /etc/kubesolo/cloud-init.yaml")


def plant_old_binary(vm: Target) -> None:
    """An old kubesolo binary in /usr/local/bin, the last thing before the
    upgrade (the trap: it would shadow the image's if /usr/local won)."""
    target = guest.KUBESOLO_BIN
    vm.succeed(
        f"rm -f {target} && printf '%s' {shlex.quote(OLD_BINARY)} > {target}"
        f" && chmod +x {target} && sync"
    )


def node_state(vm: Target, marker: Marker) -> NodeState:
    return NodeState(
        probe_all(vm, PROBES),
        {path: marker.read(vm, path) for path in PERSISTENT_PATHS},
        vm.succeed(f"cat {FLAGS_FILE}").strip(),
    )


def assert_kept(state: NodeState, marker: Marker, net_source: str) -> None:
    """`net_source`: cloud-init on the boot that applies the file, then saved
    (stage 50 saves a cloud-init network, and the saved one wins)."""
    assert state.markers == dict.fromkeys(PERSISTENT_PATHS, marker.token)
    assert state.probes["hostname"] == HOSTNAME
    assert state.probes["net-source"] == net_source
    assert f"inet {STATIC_ADDRESS}" in state.probes["addresses"], state.probes
    assert state.flags_file == EXTRA_FLAGS


def assert_runs_its_own_kubesolo(vm: Target) -> None:
    """KubeSolo was started through /usr/local/bin/kubesolo, which links to the
    image's own KubeSolo, and it runs with the kept flags (the stand-in is a
    script: its cmdline names it after its interpreter). Had the old binary
    run, it would have exited at every start and init would have given up.
    An image from before init supervised KubeSolo runs it as PID 1."""
    proc = f"/proc/$(cat {guest.KUBESOLO_PID_FILE} 2>/dev/null || echo 1)"
    argv = vm.succeed(f"tr '\\0' ' ' < {proc}/cmdline").split()
    assert guest.KUBESOLO_BIN in argv[:2], argv
    assert vm.succeed(f"readlink {guest.KUBESOLO_BIN}").strip() == guest.KUBESOLO_IN_IMAGE
    assert EXTRA_FLAGS in vm.succeed(f"cat {guest.STANDIN_ARGV}").split()


def boot(vm: Target) -> None:
    vm.start()
    vm.wait_for_boot()


@pytest.mark.long
def test_upgrade_keeps_the_node_and_runs_the_new_kubesolo_then_downgrade_boots(
    machine_factory, previous_image: Image, kubesolo_image: Image, data_disk_overlay
):
    """docs/architecture.md "Upgrades": N-1 -> N keeps every persistent path,
    the hostname, the network from cloud-init (as N-1 saved it) and the
    flags file; stage 20
    does not say first boot; PID 1 is N's KubeSolo although N-1 left a
    kubesolo binary in /usr/local/bin. N -> N-1 (a rollback) boots on the
    same disk and keeps the same state."""
    assert previous_image.path != kubesolo_image.path, "premise: two different images"
    disk = data_disk_overlay("upgrade")
    marker = Marker("upgrade-state")
    old = machine_factory(name="n-1", image=previous_image, data_disk=disk)
    boot(old)
    assert FIRST_BOOT in old.console_text()
    create_state(old, marker)
    old.reboot()  # the previous release takes its own network and hostname first
    old.wait_for_boot()
    before = node_state(old, marker)
    assert_kept(before, marker, "cloud-init")
    plant_old_binary(old)
    old.close()

    new = machine_factory(name="n", data_disk=disk)
    boot(new)
    text = new.console_text()
    assert FIRST_BOOT not in text
    assert "moved a kubesolo binary found in /usr/local/bin" in text
    after = node_state(new, marker)
    assert_kept(after, marker, "saved")  # N reads the network N-1 saved
    assert {**after.probes, "net-source": "cloud-init"} == before.probes
    assert_runs_its_own_kubesolo(new)
    assert new.succeed(f"cat {guest.KUBESOLO_BIN}.replaced") == OLD_BINARY
    new.close()

    back = machine_factory(name="n-1-again", image=previous_image, data_disk=disk)
    boot(back)
    assert FIRST_BOOT not in back.console_text()
    assert_kept(node_state(back, marker), marker, "saved")
    assert_runs_its_own_kubesolo(back)
