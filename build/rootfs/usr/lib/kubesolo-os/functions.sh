# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
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
# its own subshell) and the emergency shell see the same values. The file is
# read as data, never sourced.
load_boot_env() {
    [ -f "$KUBESOLO_BOOT_ENV" ] || return 0
    read_assignments "$KUBESOLO_BOOT_ENV" KUBESOLO_DATA_DEV KUBESOLO_DEBUG KUBESOLO_SHELL \
        KUBESOLO_NOPERSIST KUBESOLO_CLOUDINIT KUBESOLO_EXTRA_FLAGS
    return 0
}

# ---- docs/boot-flow.md "Node configuration is data": files and boot
# parameters are parsed, validated and assigned; nothing of theirs is ever
# evaluated, sourced or glob-expanded.

# save_var NAME VALUE FILE: append NAME='VALUE', each ' written '\'' (any
# bytes, newlines included, come back exactly through read_assignments).
save_var() {
    local rest="$2" quoted=""
    while :; do
        case $rest in
            *\'*) quoted="$quoted${rest%%\'*}'\\''"; rest=${rest#*\'} ;;
            *) break ;;
        esac
    done
    printf "%s='%s'\n" "$1" "$quoted$rest" >> "$3"
}

# Blanks that may follow a closing quote (CRLF files included).
KUBESOLO_BLANKS=$(printf ' \t\r')

# read_assignments FILE NAME...: assign the NAMEs (identifiers) that FILE
# sets, as data. A line is blank, a # comment, NAME='value' (save_var's
# quoting: '\'' is a quote, a value may span lines, blanks may follow) or
# NAME=value with a bare value of letters, digits and ._/:,@+- only. Any
# other line, or a NAME not listed, is one warning and is not assigned.
# False if a line was bad. The NAMEs are uppercase: its locals are not.
# shellcheck disable=SC2094 # warn_bad writes to stderr, not to FILE
read_assignments() {
    local file="$1" bad=0 no=0 name="" value="" rest="" line known listed
    shift
    while IFS= read -r line || [ -n "$line" ]; do
        no=$((no + 1))
        if [ -n "$name" ]; then  # a quoted value goes on
            value="$value
" rest=$line
        else
            case $line in ''|'#'*) continue ;; esac
            name=${line%%=*} known=0
            case $line in *=*) for listed in "$@"; do
                [ "$listed" = "$name" ] && known=1
            done ;; esac
            if [ "$known" = 0 ]; then
                warn_bad "$file" "line $no" "$line" "does not set one of $*"
                bad=1 name=""; continue
            fi
            rest=${line#*=}
            case $rest in
                \'*) rest=${rest#\'} value="" ;;
                *[!A-Za-z0-9._/:,@+-]*)
                    warn_bad "$file" "line $no" "$line" "is not NAME='value'"
                    bad=1 name=""; continue ;;
                *) eval "$name=\$rest"; name=""; continue ;;
            esac
        fi
        while :; do  # consume quoted text up to the closing quote
            case $rest in
                *\'*) ;;
                *) value=$value$rest; continue 2 ;;  # no closing quote yet
            esac
            value=$value${rest%%\'*} rest=${rest#*\'}
            case $rest in
                "\\''"*) value="$value'" rest=${rest#???} ;;
                *[!"$KUBESOLO_BLANKS"]*)
                    warn_bad "$file" "line $no" "$rest" "follows the closing quote of $name"
                    bad=1 name=""; break ;;
                *) eval "$name=\$value"; name=""; break ;;
            esac
        done
    done < "$file"
    if [ -n "$name" ]; then
        warn_bad "$file" "$name" "$value" "has no closing quote"
        bad=1
    fi
    return "$bad"
}

# cmdline_words [FILE]: one kernel parameter per line (stage 10); double
# quotes group words (kubesolo.flags="--debug --node-ip 10.0.2.15") as the
# kernel does. The words are data: the awk prints them, nothing evaluates them.
cmdline_words() {
    awk '{
        word = ""; quoted = 0
        for (i = 1; i <= length($0); i++) {
            c = substr($0, i, 1)
            if (c == "\"") { quoted = !quoted; continue }
            if (!quoted && (c == " " || c == "\t" || c == "\n")) {
                if (word != "") print word; word = ""; continue
            }
            word = word c
        }
        if (word != "") print word
    }' "${1:-/proc/cmdline}"
}

# printable VALUE: VALUE fit for a log line: bytes other than printable
# ASCII, and \ and ", as \xHH; cut at 64 characters.
printable() {
    printf '%s' "$1" | head -c 256 | awk '
        BEGIN { for (i = 1; i < 256; i++) code[sprintf("%c", i)] = i }
        {
            if (NR > 1) out = out "\\x0a"
            for (i = 1; i <= length($0); i++) {
                c = substr($0, i, 1); n = code[c]
                kept = n >= 32 && n < 127 && c != "\\" && c != "\""
                out = out (kept ? c : sprintf("\\x%02x", n))
            }
        }
        END { if (length(out) > 64) out = substr(out, 1, 61) "..."; printf "%s", out }'
}

# warn_bad ORIGIN KEY VALUE PROBLEM [OUTCOME]: the one warning of a bad
# value: where it came from, which key, the value (printable) and why.
warn_bad() {
    log_warn "$1: $2 \"$(printable "$3")\" $4; ${5:-ignored}"
}

# The grammars of node configuration values: true when $1 is one.
is_ipv4() { # dotted quad, each 0-255 without leading zeros
    case $1 in ''|*[!0-9.]*|.*|*.|*..*) return 1 ;; esac
    local rest="$1." count=0 octet
    while [ -n "$rest" ]; do
        octet=${rest%%.*} rest=${rest#*.}
        case $octet in 0?*|????*) return 1 ;; esac
        [ "$octet" -le 255 ] || return 1
        count=$((count + 1))
    done
    [ "$count" = 4 ]
}
is_ipv4_cidr() { # ADDRESS/PREFIX, prefix 0-32
    case $1 in */*/*|*/) return 1 ;; */*) ;; *) return 1 ;; esac
    case ${1#*/} in *[!0-9]*|0?*|???*) return 1 ;; esac
    [ "${1#*/}" -le 32 ] && is_ipv4 "${1%/*}"
}
is_iface_name() { # at most 15 of letters, digits, _ . -, not starting with . or -
    case $1 in ''|[.-]*|*[!A-Za-z0-9_.-]*|????????????????*) return 1 ;; esac
}
is_hostname() { # a lowercase RFC 1123 label of at most 63 characters
    case $1 in ''|-*|*-|*[!a-z0-9-]*) return 1 ;; esac
    [ "${#1}" -le 63 ]
}
is_dns_name() { # host.example: RFC 1123 labels, either case, at most 253 characters
    case $1 in ''|.*|*.|*..*|*[!A-Za-z0-9.-]*|-*|*-|*.-*|*-.*) return 1 ;; esac
    [ "${#1}" -le 253 ] || return 1
    local rest="$1." label
    while [ -n "$rest" ]; do
        label=${rest%%.*} rest=${rest#*.}
        [ "${#label}" -le 63 ] || return 1
    done
}
is_host() { is_ipv4 "$1" || is_dns_name "$1"; } # a time server
is_module_name() { # letters, digits, _ and -, starting with a letter or digit
    case $1 in ''|[!A-Za-z0-9]*|*[!A-Za-z0-9_-]*) return 1 ;; esac
}
is_flag_word() { # a word of KubeSolo's command line: letters, digits, ._:/,=@+-
    case $1 in ''|*[!A-Za-z0-9._:/,=@+-]*) return 1 ;; esac
}
is_device_spec() { # /dev/NAME, LABEL=NAME or UUID=HEX
    case $1 in
        /dev/*) case ${1#/dev/} in ''|*[!A-Za-z0-9._/-]*) return 1 ;; esac ;;
        LABEL=*) case ${1#LABEL=} in ''|*[!A-Za-z0-9._-]*) return 1 ;; esac ;;
        UUID=*) case ${1#UUID=} in ''|*[!0-9A-Fa-f-]*) return 1 ;; esac ;;
        *) return 1 ;;
    esac
}
is_abs_path() { # /a/b.yaml: letters, digits, ._/+- only
    case $1 in /*) ;; *) return 1 ;; esac
    case $1 in *[!A-Za-z0-9._/+-]*) return 1 ;; esac
}

# flag_words ORIGIN OUTCOME WORDS: print WORDS if each is a flag word
# (is_flag_word); otherwise one warning that ends with OUTCOME, and nothing:
# no half of a flag list (a flag without its value) reaches KubeSolo.
flag_words() (
    set -f  # the words are split, never globbed
    for word in $3; do
        is_flag_word "$word" && continue
        warn_bad "$1" word "$word" "is not a flag word (letters, digits and ._:/,=@+-)" "$2"
        exit 0
    done
    printf '%s\n' "$3"
)

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

# Where the devices' modaliases are: every device on a bus, and the three
# kinds that sit on none (input devices, the CPU's features, the DMI
# strings). The same set as every modalias under /sys/devices (a boot test
# compares them), without walking /sys/devices: that walk cost 0.6 s a pass
# under TCG (docs/boot-flow.md "Stage 00 — Early Mount").
MODALIAS_FILES="/sys/bus/*/devices/*/modalias /sys/class/input/*/modalias"
MODALIAS_FILES="$MODALIAS_FILES /sys/devices/system/cpu/modalias"
MODALIAS_FILES="$MODALIAS_FILES /sys/devices/virtual/dmi/id/modalias"

# read_modaliases: set DEVICE_MODALIASES to the modaliases of the devices
# present, blank-separated. The shell reads each file itself: no process
# (each costs about 10 ms under TCG). Modaliases hold no blanks. The globs
# of MODALIAS_FILES expand even under the caller's set -f, kept as it was.
read_modaliases() {
    local noglob file alias
    case $- in *f*) noglob=1; set +f ;; *) noglob="" ;; esac
    DEVICE_MODALIASES=""
    # shellcheck disable=SC2086 # the globs are meant to expand
    for file in $MODALIAS_FILES; do
        [ -r "$file" ] && read -r alias < "$file" 2>/dev/null &&
            DEVICE_MODALIASES="$DEVICE_MODALIASES $alias"
    done
    [ -z "$noglob" ] || set -f
}

# load_device_drivers: modprobe the driver of every device present, unless
# the devices are those of the last call (DEVICE_MODALIASES); false then.
# There is no udev: this is how devices that appear after stage 00
# (hot-plugged, slow USB) get their drivers.
load_device_drivers() {
    local seen="$DEVICE_MODALIASES" noglob
    read_modaliases
    [ "$DEVICE_MODALIASES" != "$seen" ] || return 1
    case $- in *f*) noglob=1 ;; *) noglob="" ;; esac
    set -f  # split, never globbed; the caller's setting comes back
    # shellcheck disable=SC2086 # one word per modalias
    modprobe -qa $DEVICE_MODALIASES 2>/dev/null
    [ -n "$noglob" ] || set +f
}

# uptime_cs: centiseconds since boot (a clock that never jumps).
uptime_cs() {
    local up
    read -r up _ < /proc/uptime
    echo "${up%.*}${up#*.}"
}

# wait_for_device SPEC SECONDS: print the device once it appears. SECONDS
# run from the "Waiting" line by the clock, however long each driver load
# takes; the last look, with drivers loaded, comes after the deadline.
wait_for_device() {
    local spec="$1" deadline="" dev
    DEVICE_MODALIASES=""  # the first look loads every driver
    while :; do
        dev=$(resolve_device "$spec") && [ -n "$dev" ] && { echo "$dev"; return 0; }
        if [ -z "$deadline" ]; then
            log "Waiting up to $2s for data device $spec"
            deadline=$(($(uptime_cs) + $2 * 100))
        elif [ "$(uptime_cs)" -ge "$deadline" ]; then
            return 1
        fi
        sleep 1
        load_device_drivers || :
    done
}

# get_ip IFACE: the first IPv4 address of an interface, without prefix.
get_ip() {
    ip -4 -o addr show dev "$1" 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }'
}

# config_lines FILE...: the lines of config files with # comments removed,
# tabs and carriage returns made blanks, blanks trimmed at both ends and
# empty lines dropped; a missing file has no lines.
config_lines() {
    local file
    for file in "$@"; do
        [ -f "$file" ] || continue
        awk '{ sub(/#.*/, ""); gsub(/[\t\r]/, " "); sub(/^ +/, ""); sub(/ +$/, "") }
            $0 != ""' "$file"
    done
}

# read_config_words FILE...: the words of config files (config_lines) on one
# line, separated by single blanks. Most nodes have none of the files: then
# no awk starts (each process costs about 10 ms under emulation).
read_config_words() {
    local file
    for file in "$@"; do
        [ -f "$file" ] || continue
        config_lines "$@" | awk '
            { for (i = 1; i <= NF; i++) printf "%s%s", (n++ ? " " : ""), $i }
            END { if (n) print "" }'
        return
    done
}

# is_mounted PATH: something is mounted on PATH (false while /proc is not).
is_mounted() {
    [ -r /proc/mounts ] || return 1
    local path
    while read -r _ path _; do
        [ "$path" = "$1" ] && return 0
    done < /proc/mounts
    return 1
}

# The cloud-init file stages 50 and 90 read, and its flattener
# (fixtures/cloud-init/README.md).
CLOUDINIT_DEFAULT=/etc/kubesolo/cloud-init.yaml
CLOUD_INIT_AWK=${CLOUD_INIT_AWK:-/usr/lib/kubesolo-os/cloud-init.awk}

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

# console_shells_allowed: a shell on the console, for whoever stands at it?
# The release image opens one only with kubesolo.debug (its kubesolo-debug
# label): docs/boot-flow.md "Release console".
console_shells_allowed() {
    load_boot_env
    [ "${KUBESOLO_DEBUG:-0}" = 1 ] || ! is_release_image
}

# is_release_image: this image is the release flavour: it has no test layer,
# whose marker lists what the layer added (docs/architecture.md "Release image").
is_release_image() { [ ! -e /usr/lib/kubesolo-os/test-layer ]; }

emergency_shell() {
    if ! console_shells_allowed; then
        log_error "Boot failed; the release image opens the emergency shell only with" \
            "kubesolo.debug: boot its kubesolo-debug label. Press Enter to retry the boot sequence"
        read -r _ || sleep 5  # a console that is gone: retry, but not in a busy loop
        return 0
    fi
    log_error "Boot failed: emergency shell on the console; type 'exit' to retry the boot sequence"
    log "Useful: dmesg | tail -50; cat /proc/cmdline; cat /proc/mounts;" \
        "findfs LABEL=KSOLODATA; ip addr"
    console_shell kubesolo-emergency
}

drop_to_shell() {
    if ! console_shells_allowed; then
        log_warn "kubesolo.shell ignored: the release image opens a shell only with kubesolo.debug"
        return 0
    fi
    log "kubesolo.shell: shell after stage 10; type 'exit' to continue the boot"
    console_shell kubesolo-shell
}
