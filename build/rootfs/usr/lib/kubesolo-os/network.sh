# shellcheck shell=sh
# Network helpers of stage 50 (docs/boot-flow.md "Stage 50 — Network"):
# interface detection, static and DHCP configuration, and the saved
# configuration.

NETWORK_SAVED=$KUBESOLO_DATA_MNT/network/interfaces.sh
NETWORK_STATE=$KUBESOLO_RUN/network.env
CLOUD_INIT_AWK=${CLOUD_INIT_AWK:-/usr/lib/kubesolo-os/cloud-init.awk}

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
    for dev in /sys/class/net/*; do
        name=${dev##*/}
        is_virtual_iface "$name" && continue
        echo "$(cat "$dev/ifindex") $name"
    done | sort -n | awk '{ print $2 }'
}

primary_iface() { physical_ifaces | head -n 1; }

write_resolv_conf() { # DNS...
    : > /etc/resolv.conf
    for server in "$@"; do echo "nameserver $server" >> /etc/resolv.conf; done
}

# apply_static IFACE ADDRESS/PREFIX [GATEWAY] [DNS...]
apply_static() {
    iface=$1 address=$2 gateway=$3
    shift 3 2>/dev/null || shift $#
    ip link set "$iface" up || return 1
    ip addr flush dev "$iface" 2>/dev/null
    ip addr add "$address" dev "$iface" || return 1
    if [ -n "$gateway" ]; then ip route replace default via "$gateway" dev "$iface" || return 1; fi
    [ $# -gt 0 ] && write_resolv_conf "$@"
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

# save_network_config: keep the chosen static configuration for the next boot.
save_network_config() {
    [ -d "${NETWORK_SAVED%/*}" ] || return 0
    { echo "# Network configuration saved by KubeSolo OS stage 50; edit to change it."
      grep -v '^NET_SOURCE=' "$NETWORK_STATE"; } > "$NETWORK_SAVED.tmp" &&
        mv "$NETWORK_SAVED.tmp" "$NETWORK_SAVED"
}

# apply_network_vars: bring up what NET_* describe (saved file or cloud-init).
apply_network_vars() {
    [ -n "$NET_IFACE" ] || NET_IFACE=$(primary_iface)
    [ -n "$NET_IFACE" ] || return 1
    # shellcheck disable=SC2086 # NET_DNS is a list of words
    case ${NET_MODE:-static} in
        dhcp) apply_dhcp "$NET_IFACE" ;;
        static) apply_static "$NET_IFACE" "$NET_ADDRESS" "$NET_GATEWAY" $NET_DNS ;;
        *) log_warn "unknown network mode $NET_MODE"; return 1 ;;
    esac
}

# cloud_init_network FILE: print NET_* assignments from the documented subset
# (fixtures/cloud-init/README.md): network.{interface,address,gateway,dns}.
cloud_init_network() {
    awk -f "$CLOUD_INIT_AWK" "$1" | awk -F= '
        $1 == "network.interface" { iface = $2 }
        $1 == "network.address"   { address = $2 }
        $1 == "network.gateway"   { gateway = $2 }
        $1 == "network.dns"       { dns = dns (dns == "" ? "" : " ") $2 }
        END {
            if (address == "") exit 1
            printf "NET_IFACE=\"%s\"\nNET_MODE=static\nNET_ADDRESS=\"%s\"\nNET_GATEWAY=\"%s\"\nNET_DNS=\"%s\"\n", iface, address, gateway, dns
        }'
}
