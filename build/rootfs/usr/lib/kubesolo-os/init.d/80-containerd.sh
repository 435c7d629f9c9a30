# shellcheck shell=sh
# Stage 80 (docs/boot-flow.md "Stage 80 — Containerd"): directories containerd
# and the CNI plugins expect, and a custom containerd config from the data
# partition. KubeSolo runs containerd itself.

CONTAINERD_CUSTOM=/etc/kubesolo/containerd/config.toml
# KubeSolo writes its own containerd config at every start and imports only
# the drop-ins of this directory; /etc/containerd/config.toml is never read
# (docs/kubesolo.md "Runtime").
CONTAINERD_DROPIN=/etc/containerd/config.d/50-node.toml

CONTAINERD_DIRS="/run/containerd /var/lib/containerd /etc/cni/net.d /opt/cni/bin"
CONTAINERD_DIRS="$CONTAINERD_DIRS ${CONTAINERD_DROPIN%/*}"

# One process makes them all (each costs about 10 ms under TCG); if it
# fails, one at a time, to name the directory that cannot be made.
# shellcheck disable=SC2086 # the list is split, its paths have no blanks
mkdir -p $CONTAINERD_DIRS 2>/dev/null || for dir in $CONTAINERD_DIRS; do
    mkdir -p "$dir" || die "cannot create $dir"
done
if [ -f "$CONTAINERD_CUSTOM" ]; then
    cp "$CONTAINERD_CUSTOM" "$CONTAINERD_DROPIN" ||
        die "cannot install $CONTAINERD_CUSTOM as $CONTAINERD_DROPIN"
    log "Custom containerd config installed from $CONTAINERD_CUSTOM as $CONTAINERD_DROPIN"
fi
