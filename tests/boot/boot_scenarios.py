"""The boot scenarios the boot suites share: how each VM is booted and
what its data partition holds (constants the tests check against)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CLOUD_INIT_FIXTURES = REPO / "fixtures" / "cloud-init"

# The MAC of the default scenario's NIC: not QEMU's default, so the
# hostname test sees a MAC the harness chose (hex letters included).
DEFAULT_VM_MAC = "52:54:00:9a:bc:de"
# Boot parameter and data-partition file of the "configured" scenario.
CMDLINE_FLAGS = "--debug --node-ip 10.0.2.15"
FLAGS_FILE = "# extra flags of this node\n--startup-timeout 900\n--disable-ipv6  # no IPv6 here\n"
SAVED_HOSTNAME = "saved-node-7"
MISSING_MODULE = "ksolo_no_such_module"
# A module the image carries (a NIC driver of the boot list) that nothing loads
# on a default node: the "configured" node lists it in its own modules.list.
NODE_MODULE = "igb"
# A saved hostname that is not a lowercase RFC 1123 label (stage 60 ignores it).
INVALID_SAVED_HOSTNAME = "Not_A_Valid.Name"
CONTAINERD_CONFIG = (
    "# custom containerd config of the boot suite\n"
    "version = 2\n"
    '[plugins."io.containerd.grpc.v1.cri"]\n'
    '  sandbox_image = "registry.k8s.io/pause:3.9"\n'
)
# Time servers that never answer: on-link addresses nobody owns, so each
# connection attempt waits for ARP to give up (about 3 s each, 9 s in all
# if stage 70 waited for them). 10.0.2.2 would not do: slirp refuses at once.
UNREACHABLE_TIME_SERVERS = ("10.0.2.97", "10.0.2.98", "10.0.2.99")
CLOUD_INIT_CUSTOM_PATH = "/etc/kubesolo/site/node.yaml"


def example_files(name: str) -> dict[str, str]:
    """A cloud-init example as data-partition files: the YAML, plus the files
    of its companion directory (laid out as on the data partition)."""
    files = {"etc-kubesolo/cloud-init.yaml": (CLOUD_INIT_FIXTURES / f"{name}.yaml").read_text()}
    companion = CLOUD_INIT_FIXTURES / name
    if companion.is_dir():
        for path in sorted(p for p in companion.rglob("*") if p.is_file()):
            files[path.relative_to(companion).as_posix()] = path.read_text()
    return files


@dataclass(frozen=True)
class Scenario:
    """A way to boot: machine settings, files preseeded on the data
    partition (None: the image's blank disk), and what "up" means."""

    settings: dict[str, Any] = field(default_factory=dict)
    disk_files: dict[str, str] | None = None
    up: str = "boot"  # "boot": KubeSolo runs as PID 1; "shell": kubesolo.shell prompt


SCENARIOS: dict[str, Scenario] = {
    "default": Scenario({"macs": (DEFAULT_VM_MAC,)}),
    "configured": Scenario(
        {"kernel_args": f'kubesolo.flags="{CMDLINE_FLAGS}"'},
        disk_files={
            "etc-kubesolo/hostname": SAVED_HOSTNAME + "\n",
            "etc-kubesolo/extra-flags": FLAGS_FILE,
            "etc-kubesolo/modules.list": (
                f"# a module no kernel has\n{MISSING_MODULE}\n{NODE_MODULE}  # one the image has\n"
            ),
            "etc-kubesolo/containerd/config.toml": CONTAINERD_CONFIG,
            "etc-kubesolo/time-servers": "\n".join(UNREACHABLE_TIME_SERVERS) + "\n",
        },
    ),
    "debug": Scenario({"kernel_args": "kubesolo.debug"}),
    "shell": Scenario({"kernel_args": "kubesolo.shell"}, up="shell"),
    "nopersist": Scenario({"kernel_args": "kubesolo.nopersist"}),
    "explicit-data": Scenario({"base_cmdline": "console=ttyS0,115200n8 kubesolo.data=/dev/vda"}),
    # found by its label; it holds a saved hostname stage 60 must ignore
    "no-data-param": Scenario(
        {"base_cmdline": "console=ttyS0,115200n8"},
        disk_files={"etc-kubesolo/hostname": INVALID_SAVED_HOSTNAME + "\n"},
    ),
    # no data disk and no NIC: RAM-only, and the hostname without a MAC
    "no-data-disk": Scenario(
        {"base_cmdline": "console=ttyS0,115200n8", "data_disk": False, "nics": 0}
    ),
    "cloudinit-default": Scenario(
        disk_files={
            "etc-kubesolo/cloud-init.yaml": (CLOUD_INIT_FIXTURES / "static.yaml").read_text()
        }
    ),
    "cloudinit-dhcp": Scenario(disk_files=example_files("dhcp")),
    "cloudinit-portainer": Scenario(disk_files=example_files("portainer-edge")),
    "cloudinit-portainer-debug": Scenario(
        {"kernel_args": "kubesolo.debug"}, disk_files=example_files("portainer-edge")
    ),
    "cloudinit-air-gapped": Scenario(disk_files=example_files("air-gapped")),
    "cloudinit-path": Scenario(
        {"kernel_args": f"kubesolo.cloudinit={CLOUD_INIT_CUSTOM_PATH}"},
        disk_files={
            "etc-kubesolo/site/node.yaml": (
                CLOUD_INIT_FIXTURES / "static-inline-lists.yaml"
            ).read_text()
        },
    ),
}
