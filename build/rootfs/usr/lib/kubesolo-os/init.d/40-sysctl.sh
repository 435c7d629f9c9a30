# shellcheck shell=sh
# Stage 40 (docs/boot-flow.md "Stage 40 — Sysctl"): apply
# /etc/sysctl.d/k8s.conf. A key the kernel rejects is an error: Kubernetes
# depends on each of them.

SYSCTL_FILE=/etc/sysctl.d/k8s.conf
[ -f "$SYSCTL_FILE" ] || die "$SYSCTL_FILE is missing from the image"
# `key = value` or `key=value`; a value may have several words
# (net.ipv4.ip_local_port_range = 32768 60999).
config_lines "$SYSCTL_FILE" | while IFS='= ' read -r key value; do
    sysctl -w "$key=$value" >/dev/null || die "sysctl $key=$value failed"
done || exit 1
log "Applied $SYSCTL_FILE"
