# shellcheck shell=sh
# Stage 90 (docs/boot-flow.md "Stage 90 — KubeSolo", "Supervision";
# docs/kubesolo.md "Command line"): build KubeSolo's command line and run it
# as the node's main process, under init's supervisor (supervisor.sh). init
# sources this file: `return`, or the supervisor giving up, is a failure.
# Booleans take no value in KubeSolo's grammar: `--local-storage`, never
# `--local-storage true`; and a flag given twice is an error. Either would
# make KubeSolo exit at every start, so the defaults, the flags file and
# kubesolo.flags= are merged by flag name (kubesolo_args). The Portainer
# Edge settings of the cloud-init file come first, so the flags file and
# kubesolo.flags= override them.
# shellcheck source=../kubesolo.sh
. /usr/lib/kubesolo-os/kubesolo.sh

KUBESOLO_BIN=/usr/local/bin/kubesolo
KUBESOLO_FLAGS_FILE=/etc/kubesolo/extra-flags

if [ ! -e "$KUBESOLO_BIN" ]; then
    log_error "$KUBESOLO_BIN not found: the image carries no KubeSolo"
    return 1
fi
if [ ! -x "$KUBESOLO_BIN" ]; then
    log_error "$KUBESOLO_BIN is not executable"
    return 1
fi
# The file's flags are data and must be flag words; kubesolo.flags was
# checked by stage 10 (docs/boot-flow.md "Node configuration is data").
file_flags=$(flag_words "$KUBESOLO_FLAGS_FILE" "all flags of this file ignored" \
    "$(read_config_words "$KUBESOLO_FLAGS_FILE")")
# The Edge key is a secret: kubesolo.debug's trace (set -x) stops here, and
# the command line is logged with the key redacted instead.
case $- in
    *x*) set +x; log "kubesolo.debug: trace off for stage 90's command line" \
        "(it may hold a secret)" ;;
esac
cloud_init_portainer "${KUBESOLO_CLOUDINIT:-$CLOUDINIT_DEFAULT}"
set -f  # no argument is a glob
read -r host_name < /proc/sys/kernel/hostname  # stage 60's, without a process
# shellcheck disable=SC2046 # arguments hold no blanks: split them
set -- $(kubesolo_args "$host_name" "$PORTAINER_FLAGS $file_flags" "$KUBESOLO_EXTRA_FLAGS")
set +f
log "Starting KubeSolo: $KUBESOLO_BIN $(redact_flags "$@")"
log_ok "Stage 90-kubesolo.sh complete"
export NO_COLOR=1
supervise_kubesolo "$KUBESOLO_BIN" "$@"
