# shellcheck shell=sh
# Stage 40 (spec "Stage 40 — Sysctl"): apply /etc/sysctl.d/k8s.conf. A key
# the kernel rejects is an error: Kubernetes depends on each of them.

SYSCTL_FILE=/etc/sysctl.d/k8s.conf
[ -f "$SYSCTL_FILE" ] || die "$SYSCTL_FILE is missing from the image"
sed 's/#.*//' "$SYSCTL_FILE" | while IFS='=' read -r key value; do
    key=$(echo "$key" | tr -d ' \t') value=$(echo "$value" | tr -d ' \t')
    [ -n "$key" ] || continue
    sysctl -w "$key=$value" >/dev/null || die "sysctl $key=$value failed"
done || exit 1
log "Applied $SYSCTL_FILE"
