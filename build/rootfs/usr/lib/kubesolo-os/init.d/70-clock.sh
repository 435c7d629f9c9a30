# shellcheck shell=sh
# Stage 70 (docs/boot-flow.md "Stage 70 — Clock"): best effort and never
# blocking. Debian's busybox-static has no ntpd applet (and Debian 12's
# ntpdate is the Python one of ntpsec), so the network attempt uses busybox
# rdate against the time servers DHCP offered or /etc/kubesolo/time-servers,
# in the background with a timeout.

if hwclock -s -u 2>/dev/null; then
    log "Clock set from the hardware clock: $(date -u)"
else
    log_warn "no hardware clock"
fi

# time_servers FILE...: the host names and IPv4 addresses of the files, on
# one line; anything else is one warning and is skipped (docs/boot-flow.md
# "Node configuration is data").
time_servers() (
    set -f  # the lists are split, never globbed
    list=""
    for file in "$@"; do
        for server in $(read_config_words "$file"); do
            if is_host "$server"; then list="$list${list:+ }$server"
            else warn_bad "$file" "time server" "$server" "is not a host name or IPv4 address"
            fi
        done
    done
    echo "$list"
)

servers=$(time_servers "$KUBESOLO_RUN/ntp-servers" /etc/kubesolo/time-servers)
set -f  # the list is split, never globbed
if [ -z "$servers" ]; then
    log_warn "no network time source available: clock left as is"
else
    ( for server in $servers; do
          timeout 10 rdate -s "$server" 2>/dev/null && { log "Clock set from $server"; exit 0; }
      done
      log_warn "no network time source answered ($servers)" ) &
    log "Network time sync started in the background"
fi
