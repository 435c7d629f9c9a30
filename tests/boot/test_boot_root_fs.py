"""The root file system: /init gives the initramfs's files a root mount that
has a parent before the stages run, so that container runtimes can
pivot_root (docs/boot-flow.md "Root file system")."""

from __future__ import annotations

import re

import pytest
from boot_guest import mounts

from harness import guest
from harness.vm.protocols import ShellAccess

pytestmark = pytest.mark.boot

# What a container runtime does for every container: a new mount namespace,
# a tmpfs new root holding busybox, pivot_root into it, the old root
# detached, then a command run there. It prints the new root's file system
# type and its entries.
PIVOT_ROOT_CHECK = r"""
dir=$(mktemp -d)
unshare -m --propagation private sh -c '
    mount -t tmpfs -o size=16m tmpfs "$1" || exit 2
    mkdir "$1/bin" "$1/old" && cp /bin/busybox "$1/bin/busybox" || exit 2
    cd "$1" && pivot_root . old || exit 1
    exec /bin/busybox sh -c "/bin/busybox umount -l /old &&
        /bin/busybox stat -f -c %T / && /bin/busybox ls /"
' sh "$dir"
status=$?
rmdir "$dir"
exit $status
"""
# Booting the stages straight from the initramfs, as this OS did before /init
# gave / a mount with a parent: the contrast that shows why it does.
ON_THE_INITRAMFS = "rdinit=/sbin/init"


def pivot_root_check(vm: ShellAccess) -> tuple[int, str, str]:
    result = vm.run(PIVOT_ROOT_CHECK)
    return result.status, result.stdout.decode(), result.stderr.decode()


def meminfo_kb(vm: ShellAccess, key: str) -> int:
    for line in vm.succeed("cat /proc/meminfo").splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    raise AssertionError(f"no {key} in /proc/meminfo")


def test_root_is_the_initramfs_bound_onto_itself(scenario):
    """docs/boot-flow.md "Root file system": `/` is a bind mount of the
    kernel's rootfs (a tmpfs), which has a parent mount, as the rootfs itself
    has not; the mount point /init used is gone."""
    vm = scenario("default")
    root = mounts(vm)["/"]
    assert root.fstype == "rootfs"
    assert root.parent_id != root.mount_id
    assert vm.succeed("stat -f -c %T /").strip() == "tmpfs"
    vm.fail("test -e /newroot")


def test_pivot_root_works(scenario):
    """docs/boot-flow.md "Root file system": pivot_root(2) into a new root,
    as crun and runc do for every container, succeeds, and a command runs
    on the new root."""
    status, out, err = pivot_root_check(scenario("default"))
    assert status == 0, err
    assert out.split() == ["tmpfs", "bin", "old"]


def test_pivot_root_fails_on_the_initramfs(machine_factory):
    """docs/boot-flow.md "Root file system": the same pivot_root fails with
    EINVAL when the stages run on the initramfs (rdinit=/sbin/init skips
    /init): the reason /init binds the root onto itself."""
    vm = machine_factory(kernel_args=ON_THE_INITRAMFS)
    vm.start()
    vm.wait_for_boot()
    root = mounts(vm)["/"]
    assert (root.fstype, root.parent_id) == ("rootfs", root.mount_id)
    status, out, err = pivot_root_check(vm)
    assert status == 1, (out, err)
    assert re.search(r"^pivot_root: .*Invalid argument$", err, re.M), err  # EINVAL


def test_a_ramfs_root_is_a_warning_and_containers_still_pivot(machine_factory):
    """docs/boot-flow.md "Root file system": with rootfstype=ramfs the
    kernel's rootfs is a ramfs, which has no size cap: /init says so in a
    warning, still binds it onto itself, and pivot_root works."""
    vm = machine_factory(kernel_args="rootfstype=ramfs")
    vm.start()
    vm.wait_for_boot()
    assert vm.succeed("stat -f -c %T /").strip() == "ramfs"
    assert re.search(rf"{guest.WARN_MARKER} the root file system is not a tmpfs", vm.console_text())
    status, _, err = pivot_root_check(vm)
    assert status == 0, err


def test_root_files_are_in_ram_once(scenario):
    """docs/boot-flow.md "Root file system": /init copies nothing, so the
    root's files are in RAM once: all of shared memory (tmpfs, the root
    included) is less than one and a half times what the root holds."""
    vm = scenario("default")
    root_used_kb = int(vm.succeed("du -sxk /").split()[0])
    assert root_used_kb > 10_000, "the root holds less than the image"
    assert meminfo_kb(vm, "Shmem") < root_used_kb * 3 // 2


def propagation(vm: ShellAccess) -> dict[str, set[str]]:
    """Mount point -> its propagation tags (`shared:N`, `master:N`, ...) from
    /proc/self/mountinfo; no tag means private."""
    tags: dict[str, set[str]] = {}
    for line in vm.succeed("cat /proc/self/mountinfo").splitlines():
        fields = line.partition(" - ")[0].split()
        tags[fields[4]] = {tag.split(":")[0] for tag in fields[6:]}
    return tags


@pytest.mark.parametrize("scenario_name", ["default", "nopersist"])
def test_root_is_rshared(scenario, scenario_name):
    """docs/boot-flow.md "Stage 00 — Early Mount": `/` is a shared mount, and
    so is every mount below it (the data partition's bind mounts and KubeSolo's
    state directory included), as the kubelet needs for mount propagation."""
    tags = propagation(scenario(scenario_name))
    assert "shared" in tags["/"]
    assert "shared" in tags[guest.KUBESOLO_PATH]
    assert not [target for target, tag in tags.items() if "shared" not in tag]
