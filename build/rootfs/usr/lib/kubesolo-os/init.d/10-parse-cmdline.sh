# shellcheck shell=sh
# Stage 10 (docs/boot-flow.md "Stage 10 — Parse Cmdline"): turn /proc/cmdline
# into the KUBESOLO_* variables, saved in $KUBESOLO_BOOT_ENV for the later
# stages.

# cmdline_words: one kernel parameter per line; double quotes group words
# (kubesolo.flags="--debug --node-ip 10.0.2.15") as the kernel does.
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

KUBESOLO_DATA_DEV="" KUBESOLO_DEBUG=0 KUBESOLO_SHELL=0 KUBESOLO_NOPERSIST=0
KUBESOLO_CLOUDINIT="" KUBESOLO_EXTRA_FLAGS=""
while IFS= read -r word; do
    case $word in
        kubesolo.data=*)      KUBESOLO_DATA_DEV=${word#*=} ;;
        kubesolo.debug)       KUBESOLO_DEBUG=1 ;;
        kubesolo.shell)       KUBESOLO_SHELL=1 ;;
        kubesolo.nopersist)   KUBESOLO_NOPERSIST=1 ;;
        kubesolo.cloudinit=*) KUBESOLO_CLOUDINIT=${word#*=} ;;
        kubesolo.flags=*)     KUBESOLO_EXTRA_FLAGS=${word#*=} ;;
        kubesolo.*)           log_warn "unknown boot parameter ignored: $word" ;;
    esac
done <<WORDS
$(cmdline_words "${KUBESOLO_CMDLINE_FILE:-/proc/cmdline}")
WORDS

# No kubesolo.data: look for the KSOLODATA label; none means RAM-only.
if [ "$KUBESOLO_NOPERSIST" = 0 ] && [ -z "$KUBESOLO_DATA_DEV" ]; then
    if dev=$(resolve_device LABEL=KSOLODATA) && [ -n "$dev" ]; then
        KUBESOLO_DATA_DEV=$dev
        log "Data partition found by label KSOLODATA: $dev"
    else
        KUBESOLO_NOPERSIST=1
        log_warn "No kubesolo.data and no KSOLODATA partition: RAM-only mode"
    fi
fi

mkdir -p "${KUBESOLO_BOOT_ENV%/*}"
: > "$KUBESOLO_BOOT_ENV"
for var in KUBESOLO_DATA_DEV KUBESOLO_DEBUG KUBESOLO_SHELL KUBESOLO_NOPERSIST \
           KUBESOLO_CLOUDINIT KUBESOLO_EXTRA_FLAGS; do
    eval "save_var $var \"\$$var\" \"\$KUBESOLO_BOOT_ENV\""
done
log "data=${KUBESOLO_DATA_DEV:-none} debug=$KUBESOLO_DEBUG shell=$KUBESOLO_SHELL nopersist=$KUBESOLO_NOPERSIST cloudinit=${KUBESOLO_CLOUDINIT:-none} flags=${KUBESOLO_EXTRA_FLAGS:-none}"
