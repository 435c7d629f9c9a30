# shellcheck shell=sh
# Stage 60 (docs/boot-flow.md "Stage 60 — Hostname"): the saved hostname, or
# kubesolo-XXXXXX from the primary MAC; saved for the next boot and written
# to /etc/hostname and /etc/hosts. KubeSolo uses it as the node name, which
# must be lowercase RFC 1123.

# shellcheck source=../network.sh
. /usr/lib/kubesolo-os/network.sh

HOSTNAME_SAVED=/etc/kubesolo/hostname

read_network_state
name=""
if [ -f "$HOSTNAME_SAVED" ]; then
    name=$(read_config_words "$HOSTNAME_SAVED")
    if ! is_hostname "$name"; then
        warn_bad "$HOSTNAME_SAVED" hostname "$name" \
            "is not a lowercase RFC 1123 label of at most 63 characters" "a new one is made"
        name=""
    fi
fi
if [ -z "$name" ]; then
    iface=${NET_IFACE:-$(primary_iface)}
    mac=$(cat "/sys/class/net/$iface/address" 2>/dev/null)
    [ -n "$mac" ] || mac=000000000000
    name=$(hostname_from_mac "$mac")
    if [ -d "${HOSTNAME_SAVED%/*}" ] && ! echo "$name" > "$HOSTNAME_SAVED"; then
        rm -f "$HOSTNAME_SAVED"  # a full data partition: no empty file for the next boot
        log_warn "cannot save the hostname to $HOSTNAME_SAVED (data partition full?):" \
            "it is made again on the next boot"
    fi
fi
hostname "$name" || die "cannot set hostname $name"
echo "$name" > /etc/hostname
grep -qw "$name" /etc/hosts 2>/dev/null || echo "127.0.1.1 $name" >> /etc/hosts
log "Hostname: $name"
