# shellcheck shell=sh
# Stage 10 (docs/boot-flow.md "Stage 10 — Parse Cmdline"): turn /proc/cmdline
# into the KUBESOLO_* variables, saved in $KUBESOLO_BOOT_ENV for the later
# stages.

# Each value is data and must fit its grammar; a bad one is one warning and
# is ignored (docs/boot-flow.md "Node configuration is data").
CMDLINE_FILE=${KUBESOLO_CMDLINE_FILE:-/proc/cmdline}
KUBESOLO_DATA_DEV="" KUBESOLO_DEBUG=0 KUBESOLO_SHELL=0 KUBESOLO_NOPERSIST=0
KUBESOLO_CLOUDINIT="" KUBESOLO_EXTRA_FLAGS=""
while IFS= read -r word; do
    value=${word#*=}
    case $word in
        kubesolo.data=*)
            if is_device_spec "$value"; then KUBESOLO_DATA_DEV=$value
            else warn_bad "$CMDLINE_FILE" kubesolo.data "$value" \
                "is not /dev/NAME, LABEL=NAME or UUID=HEX"
            fi ;;
        kubesolo.debug)       KUBESOLO_DEBUG=1 ;;
        kubesolo.shell)       KUBESOLO_SHELL=1 ;;
        kubesolo.nopersist)   KUBESOLO_NOPERSIST=1 ;;
        kubesolo.cloudinit=*)
            if is_abs_path "$value"; then KUBESOLO_CLOUDINIT=$value
            else warn_bad "$CMDLINE_FILE" kubesolo.cloudinit "$value" \
                "is not an absolute path of letters, digits and ._/+-"
            fi ;;
        kubesolo.flags=*)
            KUBESOLO_EXTRA_FLAGS=$(flag_words "$CMDLINE_FILE" "kubesolo.flags ignored" "$value") ;;
        kubesolo.testshell=*) ;;  # the test flavour's shell line, read by its early hook
        kubesolo.*)           warn_bad "$CMDLINE_FILE" "boot parameter" "$word" "is unknown" ;;
    esac
done <<WORDS
$(cmdline_words "$CMDLINE_FILE")
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
save_var KUBESOLO_DATA_DEV "$KUBESOLO_DATA_DEV" "$KUBESOLO_BOOT_ENV"
save_var KUBESOLO_DEBUG "$KUBESOLO_DEBUG" "$KUBESOLO_BOOT_ENV"
save_var KUBESOLO_SHELL "$KUBESOLO_SHELL" "$KUBESOLO_BOOT_ENV"
save_var KUBESOLO_NOPERSIST "$KUBESOLO_NOPERSIST" "$KUBESOLO_BOOT_ENV"
save_var KUBESOLO_CLOUDINIT "$KUBESOLO_CLOUDINIT" "$KUBESOLO_BOOT_ENV"
save_var KUBESOLO_EXTRA_FLAGS "$KUBESOLO_EXTRA_FLAGS" "$KUBESOLO_BOOT_ENV"
log "data=${KUBESOLO_DATA_DEV:-none} debug=$KUBESOLO_DEBUG shell=$KUBESOLO_SHELL" \
    "nopersist=$KUBESOLO_NOPERSIST cloudinit=${KUBESOLO_CLOUDINIT:-none}" \
    "flags=${KUBESOLO_EXTRA_FLAGS:-none}"
