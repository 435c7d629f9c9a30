"""What the persistence suite writes into a guest and reads back: the path tables of
docs/boot-flow.md "Stage 20 — Persistent Mount", marker files, probes of the node's
identity (hostname, network), and the two ways of restarting a guest."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass

from harness import guest
from harness.vm.protocols import ShellAccess, Target

# docs/boot-flow.md "Stage 20": the five mount points backed by the data partition.
PERSISTENT_PATHS = tuple(target for _, target in guest.BIND_MOUNTS)
# Places on the immutable root (the initramfs): nothing written there may outlive a boot.
EPHEMERAL_PATHS = ("/etc", "/root", "/opt")
DATA_MOUNT = guest.DATA_MNT

ABSENT_STATUS = 3  # exit status of `read` when the marker file does not exist


def path_id(path: str) -> str:
    """A test id for a guest path: /var/lib/kubesolo -> var-lib-kubesolo."""
    return path.strip("/").replace("/", "-")


@dataclass(frozen=True)
class Marker:
    """A file with content unique to one scenario, written into guest directories."""

    token: str

    @property
    def name(self) -> str:
        return f"persistence-marker-{self.token}"

    def file_in(self, directory: str) -> str:
        return f"{directory.rstrip('/')}/{self.name}"

    def write(self, vm: ShellAccess, directory: str) -> None:
        """Write the marker and read it back in the same boot (so that a later
        absence means it was lost, not that it was never written)."""
        target = shlex.quote(self.file_in(directory))
        vm.succeed(f"mkdir -p {shlex.quote(directory)} && echo {self.token} > {target}")
        assert self.read(vm, directory) == self.token, f"could not write {target} in the guest"

    def read(self, vm: ShellAccess, directory: str) -> str | None:
        """The marker's content, or None if the file does not exist."""
        target = shlex.quote(self.file_in(directory))
        status, output = vm.execute(f"[ -e {target} ] || exit {ABSENT_STATUS}; cat {target}")
        if status == ABSENT_STATUS:
            return None
        assert status == 0, f"reading {target} failed with status {status}: {output}"
        return output.strip()


# Probes of the node's identity: (shell command, normaliser of its output).
def _without_lifetimes(output: str) -> str:
    """`ip -o addr` lines without the lease lifetimes, which count down."""
    lines = (re.sub(r"\\?\s+valid_lft\s.*$", "", line) for line in output.splitlines())
    return "\n".join(line.rstrip() for line in lines if line.strip())


def _stripped(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip().splitlines())


PROBES: dict[str, tuple[str, Callable[[str], str]]] = {
    "hostname": ("hostname", _stripped),
    "etc-hostname": ("cat /etc/hostname", _stripped),
    "addresses": ("ip -4 -o addr show scope global", _without_lifetimes),
    "routes": ("ip -4 route show", _stripped),
    "default-route": ("ip -4 route show default", _stripped),
    "dns": ("grep '^nameserver' /etc/resolv.conf || true", _stripped),
    "mac": (f". {guest.NETWORK_ENV} && cat /sys/class/net/$NET_IFACE/address", _stripped),
    "net-source": (f'. {guest.NETWORK_ENV} && echo "$NET_SOURCE"', _stripped),
}


def probe(vm: ShellAccess, name: str) -> str:
    command, normalise = PROBES[name]
    return normalise(vm.succeed(command))


def probe_all(vm: Target, names: tuple[str, ...]) -> dict[str, str]:
    return {name: probe(vm, name) for name in names}


# Two ways to restart a guest that has written its state.
def _clean_reboot(vm: Target) -> None:
    vm.reboot()  # busybox reboot: init stops every process and unmounts


def _hard_reset_after_sync(vm: Target) -> None:
    vm.succeed("sync")
    vm.hard_reset()  # QMP system_reset: the reset button


RESTARTS: dict[str, Callable[[Target], None]] = {
    "clean-reboot": _clean_reboot,
    "hard-reset-after-sync": _hard_reset_after_sync,
}
