# shellcheck shell=sh
# Stage 30 (docs/boot-flow.md "Stage 30 — Kernel Modules"): load the image's
# module list and a node's own additions from /etc/kubesolo/modules.list (data
# partition). A module that fails is a warning: it may be built in.

load_module_list() {
    for module in $(read_config_words "$1"); do
        if [ -d "/sys/module/$module" ] || modprobe "$module" 2>/dev/null; then
            loaded=$((loaded + 1))
        else
            log_warn "kernel module $module could not be loaded (built in or missing)"
            failed=$((failed + 1))
        fi
    done
}

loaded=0 failed=0
load_module_list /usr/lib/kubesolo-os/modules.list
load_module_list /etc/kubesolo/modules.list
log "Kernel modules: $loaded loaded, $failed failed"
