# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# Network helpers of stage 50 (docs/boot-flow.md "Stage 50 — Network"):
# interface detection, static and DHCP configuration, and the saved
# configuration.

NETWORK_SAVED=$KUBESOLO_DATA_MNT/network/interfaces.sh
NETWORK_STATE=$KUBESOLO_RUN/network.env

# Interfaces that are never the node's uplink: lo, docker, veth, br, cni and
# the other virtual kinds (docs/boot-flow.md "Stage 50 — Network").
is_virtual_iface() {
    case $1 in
        lo|docker*|veth*|br*|cni*|flannel*|vxlan*|tunl*|dummy*|kube-ipvs*|sit*|ip6tnl*) return 0 ;;
    esac
    return 1
}

# physical_ifaces: non-virtual interfaces in ifindex order, so "first" means
# the NIC the firmware enumerated first.
physical_ifaces() {
    local dev name
    for dev in /sys/class/net/*; do
        name=${dev##*/}
        is_virtual_iface "$name" && continue
        echo "$(cat "$dev/ifindex") $name"
    done | sort -n | awk '{ print $2 }'
}

primary_iface() { physical_ifaces | head -n 1; }

write_resolv_conf() ( # "DNS..." (blank-separated)
    set -f  # the list is split, never globbed
    : > /etc/resolv.conf
    for server in $1; do echo "nameserver $server" >> /etc/resolv.conf; done
)

# apply_static IFACE ADDRESS/PREFIX [GATEWAY] ["DNS..."]
apply_static() {
    local iface="$1" address="$2" gateway="${3:-}" dns="${4:-}"
    ip link set "$iface" up || return 1
    ip addr flush dev "$iface" 2>/dev/null
    ip addr add "$address" dev "$iface" || return 1
    if [ -n "$gateway" ]; then ip route replace default via "$gateway" dev "$iface" || return 1; fi
    if [ -n "$dns" ]; then write_resolv_conf "$dns"; fi
    return 0
}

apply_dhcp() { # IFACE
    ip link set "$1" up || return 1
    udhcpc -i "$1" -n -q -t 5 -T 2 -s /usr/share/udhcpc/default.script >/dev/null 2>&1
}

# record_network SOURCE IFACE MODE [ADDRESS GATEWAY DNS]: what stage 50 chose,
# for stage 60 (primary MAC) and for saving.
record_network() {
    : > "$NETWORK_STATE"
    save_var NET_SOURCE "$1" "$NETWORK_STATE"
    save_var NET_IFACE "$2" "$NETWORK_STATE"
    save_var NET_MODE "$3" "$NETWORK_STATE"
    save_var NET_ADDRESS "${4:-}" "$NETWORK_STATE"
    save_var NET_GATEWAY "${5:-}" "$NETWORK_STATE"
    save_var NET_DNS "${6:-}" "$NETWORK_STATE"
}

# The NET_* names of network.env and of the saved configuration.
NETWORK_VARS="NET_IFACE NET_MODE NET_ADDRESS NET_GATEWAY NET_DNS"

# save_network_config: keep the chosen static configuration for the next
# boot: NAME='value' lines, read back as data (read_saved_network).
save_network_config() {
    [ -d "${NETWORK_SAVED%/*}" ] || return 0
    if ! { echo "# Network configuration saved by KubeSolo OS stage 50; edit to change it" \
            "(NAME='value' lines, docs/boot-flow.md \"Node configuration is data\")." \
            > "$NETWORK_SAVED.tmp" &&
        save_var NET_IFACE "$NET_IFACE" "$NETWORK_SAVED.tmp" &&
        save_var NET_MODE "$NET_MODE" "$NETWORK_SAVED.tmp" &&
        save_var NET_ADDRESS "$NET_ADDRESS" "$NETWORK_SAVED.tmp" &&
        save_var NET_GATEWAY "$NET_GATEWAY" "$NETWORK_SAVED.tmp" &&
        save_var NET_DNS "$NET_DNS" "$NETWORK_SAVED.tmp" &&
        mv "$NETWORK_SAVED.tmp" "$NETWORK_SAVED"; }; then
        rm -f "$NETWORK_SAVED.tmp"  # a full data partition: a warning, not a failed source
        log_warn "cannot save the network configuration to $NETWORK_SAVED" \
            "(data partition full?): it is read from cloud-init again on the next boot"
    fi
}

# read_network_state: NET_SOURCE and NET_* as stage 50 recorded them.
# shellcheck disable=SC2034 # NET_SOURCE is for the stages that call this
read_network_state() {
    NET_SOURCE="" NET_IFACE="" NET_MODE="" NET_ADDRESS="" NET_GATEWAY="" NET_DNS=""
    [ -f "$NETWORK_STATE" ] || return 0
    # shellcheck disable=SC2086 # a list of names
    read_assignments "$NETWORK_STATE" NET_SOURCE $NETWORK_VARS
}

# read_saved_network: NET_* from the saved configuration; false if a line
# of it is bad (read_assignments warns).
read_saved_network() {
    NET_IFACE="" NET_MODE="" NET_ADDRESS="" NET_GATEWAY="" NET_DNS=""
    # shellcheck disable=SC2086 # a list of names
    read_assignments "$NETWORK_SAVED" $NETWORK_VARS
}

# check_network ORIGIN IFACE-KEY MODE-KEY ADDRESS-KEY GATEWAY-KEY DNS-KEY:
# the NET_* values follow their grammar; one warning per bad value, naming
# ORIGIN and the key (docs/boot-flow.md "Node configuration is data").
check_network() {
    local ok=0 skip="network settings of $1 ignored" dns
    if [ -n "$NET_IFACE" ] && ! is_iface_name "$NET_IFACE"; then
        warn_bad "$1" "$2" "$NET_IFACE" "is not an interface name" "$skip"; ok=1
    fi
    case $NET_MODE in
        ''|static|dhcp) ;;
        *) warn_bad "$1" "$3" "$NET_MODE" "is not static or dhcp" "$skip"; ok=1 ;;
    esac
    if [ -n "$NET_ADDRESS" ] || [ "${NET_MODE:-static}" = static ]; then
        is_ipv4_cidr "$NET_ADDRESS" ||
            { warn_bad "$1" "$4" "$NET_ADDRESS" "is not an IPv4 address/prefix" "$skip"; ok=1; }
    fi
    if [ -n "$NET_GATEWAY" ] && ! is_ipv4 "$NET_GATEWAY"; then
        warn_bad "$1" "$5" "$NET_GATEWAY" "is not an IPv4 address" "$skip"; ok=1
    fi
    dns=$(bad_dns_server "$NET_DNS") ||
        { warn_bad "$1" "$6" "$dns" "is not an IPv4 address" "$skip"; ok=1; }
    return "$ok"
}

# bad_dns_server "DNS...": print the first server that is not IPv4, and fail.
bad_dns_server() (
    set -f  # the list is split, never globbed
    for server in $1; do
        is_ipv4 "$server" || { printf '%s' "$server"; exit 1; }
    done
)

# apply_network_vars: bring up what NET_* describe (saved file or cloud-init).
apply_network_vars() {
    [ -n "$NET_IFACE" ] || NET_IFACE=$(primary_iface)
    [ -n "$NET_IFACE" ] || return 1
    case ${NET_MODE:-static} in
        dhcp) apply_dhcp "$NET_IFACE" ;;
        static) apply_static "$NET_IFACE" "$NET_ADDRESS" "$NET_GATEWAY" "$NET_DNS" ;;
        *) return 1 ;;
    esac
}

# cloud_init_network FILE: NET_* from the documented subset
# (fixtures/cloud-init/README.md): network.{interface,address,gateway,dns},
# NET_MODE static; false without network.address. The flattener's key=value
# lines are read as data, never evaluated; only the network.* ones are read,
# so kubesolo.debug's trace never shows another key's value (a secret).
cloud_init_network() {
    NET_IFACE="" NET_MODE=static NET_ADDRESS="" NET_GATEWAY="" NET_DNS=""
    local line value
    while IFS= read -r line; do
        value=${line#*=}
        case $line in
            network.interface=*) NET_IFACE=$value ;;
            network.address=*) NET_ADDRESS=$value ;;
            network.gateway=*) NET_GATEWAY=$value ;;
            network.dns=*) NET_DNS=${NET_DNS:+$NET_DNS }$value ;;
        esac
    done <<FLAT
$(awk -f "$CLOUD_INIT_AWK" "$1" | grep '^network\.')
FLAT
    [ -n "$NET_ADDRESS" ]
}
