# shellcheck shell=sh
# Stage 80 (spec "Stage 80 — Containerd"): directories containerd and the
# CNI plugins expect, and a custom containerd config from the data partition.
# KubeSolo runs containerd itself.

CONTAINERD_CUSTOM=/etc/kubesolo/containerd/config.toml

for dir in /run/containerd /var/lib/containerd /etc/cni/net.d /opt/cni/bin /etc/containerd; do
    mkdir -p "$dir" || die "cannot create $dir"
done
if [ -f "$CONTAINERD_CUSTOM" ]; then
    cp "$CONTAINERD_CUSTOM" /etc/containerd/config.toml || die "cannot install $CONTAINERD_CUSTOM"
    log "Custom containerd config installed from $CONTAINERD_CUSTOM"
fi
