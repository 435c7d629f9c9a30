# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# Stage 20 (docs/boot-flow.md "Stage 20 — Persistent Mount"): the data
# partition, its first-boot layout and the five bind mounts; tmpfs in RAM-only
# mode. KubeSolo OS never formats a disk: a missing, unformatted, damaged or
# read-only data device is an error that names what to do ("Disk faults").

DATA_WAIT_SECONDS=30
# Less free space than this share of the data partition is a warning.
DATA_LOW_SPACE_PERCENT=5
E2FSCK_LOG=$KUBESOLO_RUN/e2fsck.log
# How to go on without the disk, said by every disk error.
WITHOUT_DISK="or boot with kubesolo.nopersist (RAM-only)"

# source-on-data-partition:mount-point, the bind-mount table of
# docs/boot-flow.md "Stage 20 — Persistent Mount".
PERSISTENT_DIRS="kubesolo:/var/lib/kubesolo containerd:/var/lib/containerd"
PERSISTENT_DIRS="$PERSISTENT_DIRS etc-kubesolo:/etc/kubesolo log:/var/log usr-local:/usr/local"
# Extra first-boot directories used by stages 50 and 60.
LAYOUT_DIRS="network"

EXT4_MAGIC=61267  # 0xEF53, at byte 56 of an ext2/3/4 superblock

# read_le16 DEV OFFSET: the little-endian 16-bit number at byte OFFSET;
# nothing past the end of DEV, where busybox dd, unable to seek, would read
# its way there one byte at a time (minutes under emulation).
read_le16() {
    [ $(($2 + 2)) -le "$(blockdev --getsize64 "$1" 2>/dev/null || echo 0)" ] || return 0
    local number
    number=$(dd if="$1" bs=1 skip="$2" count=2 2>/dev/null | od -An -tu2)
    echo "${number##* }"  # od's number without its leading blanks
}

# has_superblock DEV OFFSET [LOG]: an ext4 superblock starts at byte OFFSET
# (and says its blocks are 1024 << LOG bytes). Reads only.
has_superblock() {
    [ "$(read_le16 "$1" $(($2 + 56)))" = "$EXT4_MAGIC" ] || return 1
    [ -z "${3:-}" ] || [ "$(read_le16 "$1" $(($2 + 24)))" = "$3" ]
}

# backup_superblock DEV: the block of the first backup superblock (block
# group 1) for 1, 2 or 4 KiB blocks, if one is there.
backup_superblock() {
    local pair size_log block
    for pair in 0:8193 1:16384 2:32768; do
        size_log=${pair%%:*} block=${pair#*:}
        if has_superblock "$1" $(((1024 << size_log) * block)) "$size_log"; then
            echo "$block"
            return 0
        fi
    done
    return 1
}

# damaged_ext4_device: "DEV BLOCK" for the first block device whose primary
# superblock is gone but whose backup is there: findfs cannot see its label.
damaged_ext4_device() {
    local sys dev block
    for sys in /sys/class/block/*; do
        dev=/dev/${sys##*/}
        [ -b "$dev" ] || continue
        has_superblock "$dev" 1024 && continue
        block=$(backup_superblock "$dev") && { echo "$dev $block"; return 0; }
    done
    return 1
}

# missing_data_device: the missing-disk error; by label or UUID, it names a
# disk whose damaged superblock may be the reason.
missing_data_device() {
    local hint="" found
    case $KUBESOLO_DATA_DEV in
        LABEL=*|UUID=*)
            if found=$(damaged_ext4_device); then
                hint="; ${found% *} holds an ext4 file system whose superblock is damaged,"
                hint="$hint which hides its label: if it is the data disk, repair it from the"
                hint="$hint emergency shell with 'e2fsck -b ${found#* } ${found% *}' and type exit"
            fi ;;
    esac
    die "data device $KUBESOLO_DATA_DEV did not appear within ${DATA_WAIT_SECONDS}s:" \
        "attach a disk labelled KSOLODATA or boot with kubesolo.nopersist$hint"
}

# refuse_read_only DEV: KubeSolo must write its state; a write-protected disk
# is an error before anything touches it.
refuse_read_only() {
    [ "$(blockdev --getro "$1" 2>/dev/null)" = 1 ] || return 0
    die "data device $1 is read-only: KubeSolo OS must write its state there;" \
        "make the disk writable, $WITHOUT_DISK"
}

# check_superblock DEV: tell a damaged ext4 superblock (a backup is there:
# e2fsck can repair it) from a disk that holds no ext4 at all.
check_superblock() {
    local block
    has_superblock "$1" 1024 && return 0
    if block=$(backup_superblock "$1"); then
        die "the ext4 superblock of $1 is damaged: repair it from the emergency shell with" \
            "'e2fsck -b $block $1' and type exit, $WITHOUT_DISK; KubeSolo OS never formats disks"
    fi
    die "cannot mount $1 as ext4 on $KUBESOLO_DATA_MNT: not an ext4 file system?" \
        "(KubeSolo OS never formats disks; make one with: mkfs.ext4 -L KSOLODATA $1)"
}

# check_file_system DEV: e2fsck in preen mode repairs what is safe to repair
# unattended (the journal replays on mount anyway); anything else stops the
# boot before the kernel mounts a damaged file system.
check_file_system() {
    log "Checking the file system on $1 (e2fsck -p)"
    local status hint block
    e2fsck -p "$1" > "$E2FSCK_LOG" 2>&1
    status=$?
    awk '/./ && n++ < 20 { print "[kubesolo-init] [INFO] e2fsck: " $0 }' "$E2FSCK_LOG" >&2
    case $status in
        0) ;;
        1|2|3) log_warn "e2fsck repaired the file system on $1" \
            "(exit status $status, output in $E2FSCK_LOG)" ;;
        *)
            hint="'e2fsck $1'"
            # 8: e2fsck could not use the file system at all, its superblock included
            if [ "$status" -ge 8 ] && block=$(backup_superblock "$1"); then
                hint="'e2fsck -b $block $1'"
            fi
            die "e2fsck cannot repair the file system on $1 unattended" \
                "(exit status $status, output in $E2FSCK_LOG): repair it from the emergency" \
                "shell with $hint and type exit, $WITHOUT_DISK" ;;
    esac
}

# warn_if_full DEV: a full data partition does not stop the boot, but what
# the node saves there (KubeSolo's state, its configuration) cannot be written.
warn_if_full() {
    # shellcheck disable=SC2046 # four numbers, as df -P counts them (blocks free to users)
    set -- "$1" $(stat -f -c '%S %b %a %d' "$KUBESOLO_DATA_MNT" 2>/dev/null)
    [ "$#" = 5 ] || { log_warn "cannot read the free space of $KUBESOLO_DATA_MNT"; return 0; }
    local dev="$1" total_kib=$(($2 * $3 / 1024)) free_kib=$(($2 * $4 / 1024)) free_inodes="$5"
    if [ "$free_kib" -eq 0 ] || [ "$free_inodes" -eq 0 ]; then
        log_warn "data partition $dev is full ($free_kib KiB and $free_inodes inodes free of" \
            "$((total_kib / 1024)) MiB): KubeSolo and the node's configuration cannot be saved;" \
            "free space on it"
    elif [ $((free_kib * 100)) -lt $((total_kib * DATA_LOW_SPACE_PERCENT)) ]; then
        log_warn "data partition $dev is almost full: $((free_kib / 1024)) MiB free of" \
            "$((total_kib / 1024)) MiB (less than $DATA_LOW_SPACE_PERCENT%)"
    fi
}

mount_data_partition() {
    local dev
    dev=$(wait_for_device "$KUBESOLO_DATA_DEV" "$DATA_WAIT_SECONDS") || missing_data_device
    mkdir -p "$KUBESOLO_DATA_MNT"
    is_mounted "$KUBESOLO_DATA_MNT" && return 0
    refuse_read_only "$dev"
    check_superblock "$dev"
    check_file_system "$dev"
    mount -t ext4 -o noatime "$dev" "$KUBESOLO_DATA_MNT" ||
        die "cannot mount $dev as ext4 on $KUBESOLO_DATA_MNT" \
            "(the kernel says why: dmesg | tail): repair it from the emergency shell" \
            "and type exit, $WITHOUT_DISK"
    log "Mounted $dev on $KUBESOLO_DATA_MNT"
    warn_if_full "$dev"
}

mount_ram_only() {
    mkdir -p "$KUBESOLO_DATA_MNT"
    is_mounted "$KUBESOLO_DATA_MNT" ||
        mount -t tmpfs -o mode=0755 tmpfs "$KUBESOLO_DATA_MNT" ||
        die "cannot mount tmpfs on $KUBESOLO_DATA_MNT"
    log_warn "RAM-only mode: state is kept in tmpfs and lost on reboot"
}

# One mkdir for all (under emulation each process costs about 10 ms); when it
# fails, only a missing persistent directory stops the boot: a full partition
# without the others still boots ("Disk faults").
create_layout() {
    local entry dir
    [ -f "$KUBESOLO_DATA_MNT/.kubesolo-os" ] ||
        log "First boot on this data partition: creating the directory layout"
    set -- "$KUBESOLO_DATA_MNT/usr-local/bin"
    for entry in $PERSISTENT_DIRS; do set -- "$@" "$KUBESOLO_DATA_MNT/${entry%%:*}"; done
    for dir in $LAYOUT_DIRS; do set -- "$@" "$KUBESOLO_DATA_MNT/$dir"; done
    mkdir -p "$@" 2>/dev/null || for entry in $PERSISTENT_DIRS; do
        [ -d "$KUBESOLO_DATA_MNT/${entry%%:*}" ] ||
            die "cannot create $KUBESOLO_DATA_MNT/${entry%%:*}"
    done
    [ -f "$KUBESOLO_DATA_MNT/.kubesolo-os" ] || echo "layout=1" > "$KUBESOLO_DATA_MNT/.kubesolo-os"
}

bind_mounts() {
    local entry src dst
    set --
    for entry in $PERSISTENT_DIRS; do set -- "$@" "${entry#*:}"; done
    mkdir -p "$@"
    for entry in $PERSISTENT_DIRS; do
        src=$KUBESOLO_DATA_MNT/${entry%%:*} dst=${entry#*:}
        is_mounted "$dst" && continue
        mount --bind "$src" "$dst" || die "cannot bind-mount $src on $dst"
    done
}

# The /usr/local bind mount hides the image's /usr/local/bin. The image keeps
# its KubeSolo in $KUBESOLO_IMAGE_BIN and links it into /usr/local/bin on
# every boot, so each boot runs the binary of the image it booted.
link_image_kubesolo() {
    local target=/usr/local/bin/kubesolo
    if [ -f "$target" ] && [ ! -L "$target" ]; then
        mv "$target" "$target.replaced" &&
            log_warn "moved a kubesolo binary found in /usr/local/bin to $target.replaced"
    fi
    ln -sfn "$KUBESOLO_IMAGE_BIN" "$target" || die "cannot link $KUBESOLO_IMAGE_BIN to $target"
}

KUBESOLO_IMAGE_BIN=/usr/lib/kubesolo-os/bin/kubesolo
if [ "$KUBESOLO_NOPERSIST" = 1 ]; then
    mount_ram_only
else
    mount_data_partition
fi
create_layout
bind_mounts
link_image_kubesolo
