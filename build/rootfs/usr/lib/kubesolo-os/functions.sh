# shellcheck shell=sh
# Shared helpers of the init stages: logging, the boot environment, device
# waits and the emergency shell (docs/boot-flow.md "Failure Handling").

# shellcheck disable=SC2034 # used by the stages that source this file
KUBESOLO_RUN=${KUBESOLO_RUN:-/run/kubesolo-os}
KUBESOLO_BOOT_ENV=$KUBESOLO_RUN/boot.env
KUBESOLO_DATA_MNT=${KUBESOLO_DATA_MNT:-/mnt/data}

log()       { echo "[kubesolo-init] [INFO] $*" >&2; }
log_ok()    { echo "[kubesolo-init] [OK] $*" >&2; }
log_warn()  { echo "[kubesolo-init] [WARN] $*" >&2; }
log_error() { echo "[kubesolo-init] [ERROR] $*" >&2; }

# die MESSAGE: report a stage failure; init then opens the emergency shell.
die() { log_error "$*"; exit 1; }

# The variables of stage 10 live in a file so that every stage (each runs in
# its own subshell) and the emergency shell see the same values.
load_boot_env() {
    # shellcheck disable=SC1090
    [ -f "$KUBESOLO_BOOT_ENV" ] && . "$KUBESOLO_BOOT_ENV"
    return 0
}

# save_var NAME VALUE FILE: append a sh-quoted assignment.
save_var() {
    printf "%s='%s'\n" "$1" "$(printf '%s' "$2" | sed "s/'/'\\\\''/g")" >> "$3"
}

shell_requested() { load_boot_env; [ "${KUBESOLO_SHELL:-0}" = 1 ]; }

# resolve_device SPEC: print the block device for /dev/..., LABEL= or UUID=.
# busybox has no blkid applet in Debian's busybox-static; findfs is its
# equivalent (same volume_id probe).
resolve_device() {
    case $1 in
        LABEL=*|UUID=*) findfs "$1" 2>/dev/null ;;
        *) [ -b "$1" ] && echo "$1" ;;
    esac
}

# load_device_drivers [SEEN]: modprobe the driver of every device whose
# modalias is not in SEEN (the output of an earlier call); print the
# modaliases present now. There is no udev: this is how devices that appear
# after stage 00 (hot-plugged, slow USB) get their drivers.
load_device_drivers() {
    current=$(find /sys/devices -name modalias -type f -exec cat {} + 2>/dev/null | sort -u)
    if [ "$current" != "$1" ]; then
        echo "$current" | xargs -r modprobe -qa 2>/dev/null
    fi
    echo "$current"
}

# wait_for_device SPEC SECONDS: print the device once it appears.
wait_for_device() {
    spec=$1 waited=0 drivers=""
    while [ "$waited" -lt "$2" ]; do
        dev=$(resolve_device "$spec") && [ -n "$dev" ] && { echo "$dev"; return 0; }
        [ "$waited" = 0 ] && log "Waiting up to $2s for data device $spec"
        sleep 1
        drivers=$(load_device_drivers "$drivers")
        waited=$((waited + 1))
    done
    return 1
}

# get_ip IFACE: the first IPv4 address of an interface, without prefix.
get_ip() {
    ip -4 -o addr show dev "$1" 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }'
}

# config_lines FILE...: the lines of config files with # comments removed,
# tabs and carriage returns made blanks, blanks trimmed at both ends and
# empty lines dropped; a missing file has no lines.
config_lines() {
    for file in "$@"; do
        [ -f "$file" ] || continue
        awk '{ sub(/#.*/, ""); gsub(/[\t\r]/, " "); sub(/^ +/, ""); sub(/ +$/, "") } $0 != ""' "$file"
    done
}

# read_config_words FILE...: the words of config files (config_lines) on one
# line, separated by single blanks.
read_config_words() {
    config_lines "$@" | awk '{ for (i = 1; i <= NF; i++) printf "%s%s", (n++ ? " " : ""), $i } END { if (n) print "" }'
}

# is_mounted PATH: something is mounted on PATH (false while /proc is not).
is_mounted() {
    awk -v path="$1" '$2 == path { found = 1 } END { exit !found }' /proc/mounts 2>/dev/null
}

# KubeSolo's boolean flags (docs/kubesolo.md "Command line"): they never take
# a value, and each has a --no- form. Every other flag takes one value.
KUBESOLO_BOOL_FLAGS="local-storage debug container-mode db-wal-repair disable-ipv6 metrics-server version help"
# Flags whose values add up (comma-separated) instead of replacing each other.
KUBESOLO_LIST_FLAGS="apiserver-extra-sans"

# merge_flags: read command-line words, one per line, and print them merged
# by flag name, one per line. A flag given again, or negated with --no-,
# replaces the earlier one and takes its place in the order; the values of
# a list flag are joined (comma-separated, duplicates dropped, order kept).
# A value is `--flag=value`, or the next word unless it starts with `-` (as
# kingpin reads it). Words are only data: nothing is evaluated.
merge_flags() {
    awk -v bools="$KUBESOLO_BOOL_FLAGS" -v lists="$KUBESOLO_LIST_FLAGS" '
        BEGIN {
            n = split(bools, b, " "); for (i = 1; i <= n; i++) is_bool[b[i]] = 1
            n = split(lists, l, " "); for (i = 1; i <= n; i++) is_list[l[i]] = 1
        }
        { word[NR] = $0 }
        function place(key, text) {
            if (key in slot) delete owner[slot[key]]
            slot[key] = ++slots; owner[slots] = key; words_of[key] = text
        }
        function add_to_list(key, value,    n, parts, i) {
            n = split(value, parts, ",")
            for (i = 1; i <= n; i++) {
                if (parts[i] == "" || (key SUBSEP parts[i]) in listed) continue
                listed[key, parts[i]] = 1
                joined[key] = joined[key] (joined[key] == "" ? "" : ",") parts[i]
            }
            place(key, "--" key "\n" joined[key])
        }
        END {
            for (i = 1; i <= NR; i++) {
                w = word[i]
                if (w !~ /^--[^=]/) { place("\001" i, w); continue }  # not a flag: kept where it is
                name = substr(w, 3); text = w; has_value = 0
                if ((eq = index(name, "=")) > 0) {
                    value = substr(name, eq + 1); name = substr(name, 1, eq - 1); has_value = 1
                }
                key = name
                if (name ~ /^no-/ && is_bool[substr(name, 4)]) key = substr(name, 4)
                if (!has_value && !is_bool[key] && i < NR && word[i + 1] !~ /^-/) {
                    value = word[++i]; text = text "\n" value; has_value = 1
                }
                if (is_list[key] && has_value) add_to_list(key, value)
                else place(key, text)
            }
            for (s = 1; s <= slots; s++) if (s in owner) print words_of[owner[s]]
        }'
}

# kubesolo_args HOSTNAME FILE_FLAGS CMDLINE_FLAGS: KubeSolo's arguments, one
# per line (stage 90): the defaults, then the flags file's, then the boot
# parameter's, merged by flag name (merge_flags), so the later source wins.
# Booleans take no value in KubeSolo's grammar: `--local-storage`, never
# `--local-storage true`.
kubesolo_args() (
    set -f  # the flag lists are split on blanks, never globbed
    # shellcheck disable=SC2086 # word splitting of the flag lists is intended
    printf '%s\n' --path /var/lib/kubesolo --local-storage --apiserver-extra-sans "$1" $2 $3 |
        merge_flags
)

# hostname_from_mac MAC: kubesolo- and the last six hex digits, lowercase
# (stage 60).
hostname_from_mac() {
    echo "$1" | tr -d ':' | tr 'A-F' 'a-f' | awk '{ print "kubesolo-" substr($0, length($0) - 5) }'
}

# A root shell on the console: used on failure and for kubesolo.shell.
console_shell() {
    mkdir -p "$KUBESOLO_RUN"
    echo "$1" > "$KUBESOLO_RUN/shell"
    PS1="($1) # " setsid cttyhack sh -i
    rm -f "$KUBESOLO_RUN/shell"
}

emergency_shell() {
    log_error "Boot failed: emergency shell on the console; type 'exit' to retry the boot sequence"
    log "Useful: dmesg | tail -50; cat /proc/cmdline; cat /proc/mounts; findfs LABEL=KSOLODATA; ip addr"
    console_shell kubesolo-emergency
}

drop_to_shell() {
    log "kubesolo.shell: shell after stage 10; type 'exit' to continue the boot"
    console_shell kubesolo-shell
}
