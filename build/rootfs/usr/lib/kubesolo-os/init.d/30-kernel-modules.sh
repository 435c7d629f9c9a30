# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# Stage 30 (docs/boot-flow.md "Stage 30 — Kernel Modules"): load the image's
# module list and a node's own additions from /etc/kubesolo/modules.list (data
# partition). A module that fails is a warning: it may be built in.

# A name that is not a module name is one warning and is skipped
# (docs/boot-flow.md "Node configuration is data"). The list's modules load
# in one modprobe: under emulation, starting modprobe costs more than most
# modules' own load. A module the batch did not bring is then tried alone.
load_module_list() {
    local names="" module
    set -f  # the list is split, never globbed
    for module in $(read_config_words "$1"); do
        if is_module_name "$module"; then
            names="$names $module"
        else
            warn_bad "$1" "module name" "$module" \
                "is not letters, digits, _ and - (starting with a letter or digit)"
        fi
    done
    # shellcheck disable=SC2086 # names are split, each a checked module name
    [ -n "$names" ] && modprobe -qa $names 2>/dev/null
    for module in $names; do
        if [ -d "/sys/module/$module" ] || modprobe "$module" 2>/dev/null; then
            loaded=$((loaded + 1))
        else
            log_warn "kernel module $module could not be loaded (built in or missing)"
            failed=$((failed + 1))
        fi
    done
    set +f
}

loaded=0 failed=0
load_module_list /usr/lib/kubesolo-os/modules.list
load_module_list /etc/kubesolo/modules.list
log "Kernel modules: $loaded loaded, $failed failed"
