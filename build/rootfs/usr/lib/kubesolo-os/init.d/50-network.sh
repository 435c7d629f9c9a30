# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# Stage 50 (docs/boot-flow.md "Stage 50 — Network"): saved config > cloud-init
# > DHCP on the first physical interface. A node without a network still boots
# (with a warning): KubeSolo reports the problem itself.
# shellcheck source=../network.sh
. /usr/lib/kubesolo-os/network.sh

ip link set lo up

# Each source's values are data: read, checked against their grammar (one
# warning per bad value) and only then applied; a bad source is skipped for
# the next one (docs/boot-flow.md "Node configuration is data").
configure_from_saved() {
    local lines_ok
    [ -f "$NETWORK_SAVED" ] || return 1
    read_saved_network; lines_ok=$?  # a bad line: the file is not used, its values still checked
    check_network "$NETWORK_SAVED" NET_IFACE NET_MODE NET_ADDRESS NET_GATEWAY NET_DNS || return 1
    [ "$lines_ok" = 0 ] || return 1
    apply_network_vars ||
        { log_warn "saved network config $NETWORK_SAVED failed to apply"; return 1; }
    record_network saved "$NET_IFACE" "${NET_MODE:-static}" "$NET_ADDRESS" "$NET_GATEWAY" \
        "$NET_DNS"
}

configure_from_cloud_init() {
    local file="${KUBESOLO_CLOUDINIT:-$CLOUDINIT_DEFAULT}"
    if [ ! -f "$file" ]; then
        [ -n "$KUBESOLO_CLOUDINIT" ] && log_warn "cloud-init file $file not found"
        return 1
    fi
    cloud_init_network "$file" ||
        { log_warn "cloud-init file $file has no network.address"; return 1; }
    check_network "$file" network.interface network.mode network.address network.gateway \
        network.dns || return 1
    apply_network_vars ||
        { log_warn "cloud-init network config from $file failed to apply"; return 1; }
    record_network cloud-init "$NET_IFACE" static "$NET_ADDRESS" "$NET_GATEWAY" "$NET_DNS"
    save_network_config
}

configure_with_dhcp() {
    local iface
    iface=$(primary_iface)
    [ -n "$iface" ] || { log_warn "no physical network interface found"; return 1; }
    if apply_dhcp "$iface"; then
        record_network dhcp "$iface" dhcp "$(get_ip "$iface")"
    else
        log_warn "DHCP on $iface got no lease"
        record_network none "$iface" dhcp
        return 1
    fi
}

configure_from_saved || configure_from_cloud_init || configure_with_dhcp
read_network_state
log "Network: ${NET_IFACE:-none} ${NET_ADDRESS:-no address} (from ${NET_SOURCE:-nothing})"
