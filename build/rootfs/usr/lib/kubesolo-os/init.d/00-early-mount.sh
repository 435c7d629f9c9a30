# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# Stage 00 (docs/boot-flow.md "Stage 00 — Early Mount"): virtual filesystems,
# then the drivers of the devices present (coldplug), so that stage 20 finds
# its disk. Every mount is skipped when already there: the emergency shell's
# `exit` runs this stage again.

# The image has no /sbin/modprobe: until this link, the kernel's own module
# requests (its built-in crypto templates, before /init) fail at once instead
# of each starting busybox (0.3-0.5 s under TCG).
[ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe || die "cannot link /sbin/modprobe"

mount_once() { # TYPE SOURCE TARGET [OPTIONS]
    is_mounted "$3" && return 0
    [ -d "$3" ] || mkdir -p "$3"
    mount -t "$1" ${4:+-o "$4"} "$2" "$3" || die "cannot mount $1 on $3"
}

mount_once proc proc /proc nosuid,nodev,noexec
mount_once sysfs sysfs /sys nosuid,nodev,noexec
mount_once devtmpfs devtmpfs /dev mode=0755,nosuid
mount_once tmpfs tmpfs /tmp mode=1777,nosuid,nodev
mount_once tmpfs tmpfs /run mode=0755,nosuid,nodev
mount_once devpts devpts /dev/pts gid=5,mode=620,ptmxmode=666
mount_once tmpfs tmpfs /dev/shm mode=1777,nosuid,nodev

has_cgroup2() {
    local first second
    while read -r first second; do
        [ "$first" = cgroup2 ] || [ "$second" = cgroup2 ] && return 0
    done < /proc/filesystems
    return 1
}

if has_cgroup2; then
    mount_once cgroup2 cgroup2 /sys/fs/cgroup nsdelegate
    # KubeSolo needs these controllers (docs/kubesolo.md "Host requirements").
    read -r available < /sys/fs/cgroup/cgroup.controllers
    for c in cpuset cpu io memory pids hugetlb; do
        case " $available " in
            *" $c "*) echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ;;
        esac
    done
else
    log_warn "cgroup v2 unavailable: falling back to cgroup v1"
    mount_once tmpfs cgroup /sys/fs/cgroup mode=0755
    for c in cpuset cpu cpuacct memory pids devices blkio; do
        mount_once cgroup cgroup "/sys/fs/cgroup/$c" "$c" || true
    done
fi

# The kubelet needs / shared (volume propagation, projected service-account
# tokens; docs/kubesolo.md "Runtime"); busybox leaves it private. Every mount
# below / now, and every later one (stage 20, KubeSolo), is then shared too.
mount --make-rshared / || die "cannot make / a shared mount"

mkdir -p "$KUBESOLO_RUN"
ln -sf /proc/self/fd /dev/fd 2>/dev/null

# Coldplug: the Debian kernel has virtio, ext4 and the NIC drivers as
# modules. Load the driver of every device present by its modalias, again
# while new devices appear (virtio_pci brings the virtio devices); file
# systems load on demand at mount time (the kernel asks modprobe for fs-*).
coldplug() {
    local pass=0
    # shellcheck disable=SC2034 # load_device_drivers reads it
    DEVICE_MODALIASES=""
    while [ "$pass" -lt 4 ] && load_device_drivers; do
        pass=$((pass + 1))
    done
    modules=0
    while read -r _; do modules=$((modules + 1)); done < /proc/modules
}
coldplug
log "Coldplug done: $modules modules loaded"
