# shellcheck shell=sh
# Stage 20 (docs/boot-flow.md "Stage 20 — Persistent Mount"): the data
# partition, its first-boot layout and the five bind mounts; tmpfs in RAM-only
# mode. KubeSolo OS never formats a disk: a missing or unformatted data device
# is an error that names what to do.

DATA_WAIT_SECONDS=30

# source-on-data-partition:mount-point, the bind-mount table of
# docs/boot-flow.md "Stage 20 — Persistent Mount".
PERSISTENT_DIRS="kubesolo:/var/lib/kubesolo containerd:/var/lib/containerd etc-kubesolo:/etc/kubesolo log:/var/log usr-local:/usr/local"
# Extra first-boot directories used by stages 50 and 60.
LAYOUT_DIRS="network"

mount_data_partition() {
    dev=$(wait_for_device "$KUBESOLO_DATA_DEV" "$DATA_WAIT_SECONDS") ||
        die "data device $KUBESOLO_DATA_DEV did not appear within ${DATA_WAIT_SECONDS}s: attach a disk labelled KSOLODATA or boot with kubesolo.nopersist"
    mkdir -p "$KUBESOLO_DATA_MNT"
    is_mounted "$KUBESOLO_DATA_MNT" && return 0
    mount -t ext4 -o noatime "$dev" "$KUBESOLO_DATA_MNT" ||
        die "cannot mount $dev as ext4 on $KUBESOLO_DATA_MNT: not an ext4 file system? (KubeSolo OS never formats disks; make one with: mkfs.ext4 -L KSOLODATA $dev)"
    log "Mounted $dev on $KUBESOLO_DATA_MNT"
}

mount_ram_only() {
    mkdir -p "$KUBESOLO_DATA_MNT"
    is_mounted "$KUBESOLO_DATA_MNT" ||
        mount -t tmpfs -o mode=0755 tmpfs "$KUBESOLO_DATA_MNT" || die "cannot mount tmpfs on $KUBESOLO_DATA_MNT"
    log_warn "RAM-only mode: state is kept in tmpfs and lost on reboot"
}

create_layout() {
    [ -f "$KUBESOLO_DATA_MNT/.kubesolo-os" ] || log "First boot on this data partition: creating the directory layout"
    for entry in $PERSISTENT_DIRS; do
        mkdir -p "$KUBESOLO_DATA_MNT/${entry%%:*}" || die "cannot create $KUBESOLO_DATA_MNT/${entry%%:*}"
    done
    for dir in $LAYOUT_DIRS; do mkdir -p "$KUBESOLO_DATA_MNT/$dir"; done
    mkdir -p "$KUBESOLO_DATA_MNT/usr-local/bin"
    [ -f "$KUBESOLO_DATA_MNT/.kubesolo-os" ] || echo "layout=1" > "$KUBESOLO_DATA_MNT/.kubesolo-os"
}

bind_mounts() {
    for entry in $PERSISTENT_DIRS; do
        src=$KUBESOLO_DATA_MNT/${entry%%:*} dst=${entry#*:}
        is_mounted "$dst" && continue
        mkdir -p "$dst"
        mount --bind "$src" "$dst" || die "cannot bind-mount $src on $dst"
    done
}

# The /usr/local bind mount hides the image's /usr/local/bin. The image keeps
# its KubeSolo in $KUBESOLO_IMAGE_BIN and links it into /usr/local/bin on
# every boot, so each boot runs the binary of the image it booted.
link_image_kubesolo() {
    target=/usr/local/bin/kubesolo
    if [ -f "$target" ] && [ ! -L "$target" ]; then
        mv "$target" "$target.replaced" && log_warn "moved a kubesolo binary found in /usr/local/bin to $target.replaced"
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
