"""Command lines the harness runs in the guest's test shell (busybox sh, the
image's own applets). None of them calls `exit`: the test shell must survive."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from harness import guest
from harness.k8s.kubesolo import CONTAINERD_NAMESPACE, CONTAINERD_SOCKETS, KUBELET_HEALTHZ

IMAGES_SHARE_TAG = "kimages"  # the 9p share of --kubesolo-images
IMAGES_MOUNT_POINT = "/mnt/kimages"
GZIP_SUFFIXES = (".tar.gz", ".tgz")


def kubelet_healthz_command(url: str = KUBELET_HEALTHZ, seconds: int = 10) -> str:
    """GET the kubelet's /healthz, bounded by busybox `timeout`: the image's busybox (Debian's
    busybox-static 1.35) wget has no `-T` and segfaults when given one."""
    return f"timeout {seconds} wget -qO- {shlex.quote(url)}"


def kubeconfig_stamps_command(path: str = guest.ADMIN_KUBECONFIG) -> str:
    """Print the file's mtime, then the boot time (/proc/stat btime), both in epoch seconds:
    the file stays on disk across boots, so only a write after this boot's start counts."""
    return f"stat -c %Y {shlex.quote(path)} && sed -n 's/^btime //p' /proc/stat"


def boot_id_command() -> str:
    """The kernel's boot id, the one the kubelet reports as the node's."""
    return "cat /proc/sys/kernel/random/boot_id"


def ipv4_addresses_command() -> str:
    """The guest's IPv4 addresses, one interface a line (busybox ip)."""
    return "ip -4 -o addr show"


def mount_share_command(tag: str = IMAGES_SHARE_TAG, point: str = IMAGES_MOUNT_POINT) -> str:
    quoted = shlex.quote(point)
    return (
        f"mkdir -p {quoted} && {{ grep -qs ' {point} ' /proc/mounts || "
        f"mount -t 9p -o trans=virtio,ro,version=9p2000.L {shlex.quote(tag)} {quoted}; }}"
    )


def unmount_shares_command() -> str:
    """Unmount every 9p share: a machine with one mounted cannot be saved (QEMU's
    migration blocker). The next import mounts the images share again."""
    return (
        "grep ' 9p ' /proc/mounts | while read -r _ point _; do "
        'umount "$point" || echo "cannot unmount $point" >&2; done; '
        "! grep -q ' 9p ' /proc/mounts"
    )


def containerd_socket_command(candidates: Sequence[str] = CONTAINERD_SOCKETS) -> str:
    """Print the first containerd socket that exists (KubeSolo's own comes first)."""
    words = " ".join(shlex.quote(c) for c in candidates)
    return f'for s in {words}; do if [ -S "$s" ]; then echo "$s"; break; fi; done'


def ctr_command(socket: str, *args: str) -> str:
    return shlex.join(["ctr", "-a", socket, "-n", CONTAINERD_NAMESPACE, *args])


def import_command(socket: str, name: str) -> str:
    """ctr's importer reads a plain tar stream only: a gzipped archive goes through gunzip."""
    path = f"{IMAGES_MOUNT_POINT}/{name}"
    if name.endswith(GZIP_SUFFIXES):
        return f"gunzip -c {shlex.quote(path)} | {ctr_command(socket, 'images', 'import', '-')}"
    return ctr_command(socket, "images", "import", path)


def import_commands(socket: str, names: Iterable[str]) -> list[str]:
    return [import_command(socket, name) for name in names]
