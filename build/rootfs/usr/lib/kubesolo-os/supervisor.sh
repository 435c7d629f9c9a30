# shellcheck shell=sh disable=SC3043 # busybox ash, the guest's sh, has local
# PID 1's duties once the stages have run (docs/boot-flow.md "Supervision"):
# run KubeSolo as the node's main process and start it again when it exits,
# reap every orphan, and take the node down cleanly on reboot, poweroff or
# halt. init sources this file; stage 90, sourced by init, calls it.

# A start that ends sooner than this is a fast failure; this many in a row
# and init gives up, with KubeSolo's last lines, instead of looping.
KUBESOLO_FAST_EXIT_SECONDS=120
KUBESOLO_MAX_FAST_FAILURES=5
# The pause before start N+1 doubles from the first, up to the last.
KUBESOLO_FIRST_BACKOFF=2
KUBESOLO_MAX_BACKOFF=30
KUBESOLO_LAST_LINES=20
# Shutdown: how long KubeSolo, then every other process, may take to stop.
KUBESOLO_STOP_SECONDS=60
PROCESS_STOP_SECONDS=10

KUBESOLO_LOG_FIFO=$KUBESOLO_RUN/kubesolo.fifo
KUBESOLO_LAST_FILE=$KUBESOLO_RUN/kubesolo.last
KUBESOLO_PID_FILE=$KUBESOLO_RUN/kubesolo.pid  # the running KubeSolo's PID
KUBESOLO_PID=""
LOGGER_PID=""

# exit_reason STATUS: "exit status N", or the signal of a status above 128.
exit_reason() {
    if [ "$1" -gt 128 ]; then
        echo "signal $(($1 - 128)) ($(kill -l "$(($1 - 128))" 2>/dev/null || echo '?'))"
    else
        echo "exit status $1"
    fi
}

# backoff_seconds N: the pause before the start after N fast failures.
backoff_seconds() {
    local seconds="$KUBESOLO_FIRST_BACKOFF" n="$1"
    while [ "$n" -gt 1 ] && [ "$seconds" -lt "$KUBESOLO_MAX_BACKOFF" ]; do
        seconds=$((seconds * 2)) n=$((n - 1))
    done
    [ "$seconds" -le "$KUBESOLO_MAX_BACKOFF" ] || seconds=$KUBESOLO_MAX_BACKOFF
    echo "$seconds"
}

# start_logger: one awk copies KubeSolo's output to the console and keeps
# its last lines in memory; a line of \001 alone makes it write them to
# KUBESOLO_LAST_FILE. Memory stays bounded however long the node runs; fd 7
# (this shell's) holds the FIFO open across KubeSolo's restarts.
start_logger() {
    [ -n "$LOGGER_PID" ] && kill -0 "$LOGGER_PID" 2>/dev/null && return 0
    rm -f "$KUBESOLO_LOG_FIFO" && mkfifo -m 0600 "$KUBESOLO_LOG_FIFO" || return 1
    # First read-write: an open that never waits for a reader, so no signal
    # can interrupt it; `command`, so that a failed one returns here instead
    # of ending PID 1 (a redirection error of a bare exec ends the shell).
    command exec 7<> "$KUBESOLO_LOG_FIFO" || return 1
    awk -v keep="$KUBESOLO_LAST_LINES" -v out="$KUBESOLO_LAST_FILE" '
        $0 == "\001" {
            printf "" > (out ".new")
            for (i = NR - keep; i < NR; i++) if (i > 0 && (i in last)) print last[i] > (out ".new")
            close(out ".new"); system("mv -f \"" out ".new\" \"" out "\"")
            next
        }
        { print; fflush(); last[NR] = $0; delete last[NR - keep] }' \
        < "$KUBESOLO_LOG_FIFO" 7>&- &
    LOGGER_PID=$!
    # Then write-only (a reader is there: it does not wait), so that a logger
    # that died is an error to KubeSolo's writes, not a pipe that fills.
    command exec 7> "$KUBESOLO_LOG_FIFO" || return 1
}

# flush_logger: wait (up to 5 s) until the logger has copied to the console
# everything KubeSolo wrote so far: it writes KUBESOLO_LAST_FILE when it
# reaches the marker, which comes after those lines.
flush_logger() {
    local tries=50
    [ -n "$LOGGER_PID" ] || return 1
    rm -f "$KUBESOLO_LAST_FILE"
    printf '\001\n' 2>/dev/null >&7 || return 1
    while [ ! -f "$KUBESOLO_LAST_FILE" ] && [ "$tries" -gt 0 ]; do
        sleep 0.1; tries=$((tries - 1))
    done
    [ -f "$KUBESOLO_LAST_FILE" ]
}

# last_kubesolo_lines: KubeSolo's last lines, once the logger has copied
# everything it wrote before it exited.
last_kubesolo_lines() {
    flush_logger && sed 's/^/    | /' "$KUBESOLO_LAST_FILE"
}

# supervise_kubesolo BIN ARG...: run KubeSolo until the node goes down,
# starting it again after each exit; false (give up) after
# KUBESOLO_MAX_FAST_FAILURES fast failures in a row. While it waits for
# KubeSolo, this shell reaps every orphan: ash's wait collects any child.
supervise_kubesolo() {
    local fast=0 started status lasted pause
    start_logger || log_warn "cannot start KubeSolo's logger: its output goes to the console only"
    while :; do
        started=$(uptime_cs)
        if [ -n "$LOGGER_PID" ]; then
            "$@" >&7 2>&7 7>&- &
        else
            "$@" &
        fi
        KUBESOLO_PID=$!
        echo "$KUBESOLO_PID" > "$KUBESOLO_PID_FILE"
        wait "$KUBESOLO_PID"
        status=$?
        KUBESOLO_PID=""
        rm -f "$KUBESOLO_PID_FILE"
        lasted=$((($(uptime_cs) - started) / 100))
        if [ "$lasted" -lt "$KUBESOLO_FAST_EXIT_SECONDS" ]; then
            fast=$((fast + 1))
        else
            fast=0
        fi
        if [ "$fast" -ge "$KUBESOLO_MAX_FAST_FAILURES" ]; then
            log_error "Giving up on KubeSolo: $fast fast failures in a row (each start ended" \
                "within ${KUBESOLO_FAST_EXIT_SECONDS}s; the last: $(exit_reason "$status") after" \
                "${lasted}s). Its last lines:"
            last_kubesolo_lines >&2
            exec 7>&-  # the logger ends; the next boot sequence starts another
            LOGGER_PID=""
            return 1
        fi
        pause=$(backoff_seconds "$((fast > 0 ? fast : 1))")
        log_warn "KubeSolo exited ($(exit_reason "$status") after ${lasted}s, fast failure" \
            "$fast of $KUBESOLO_MAX_FAST_FAILURES): restarting it in ${pause}s"
        sleep "$pause"
    done
}

# ---- shutdown -----------------------------------------------------------

# live_processes: the PIDs of running user processes but PID 1. Kernel
# threads and zombies have no executable to follow.
live_processes() {
    local proc
    for proc in /proc/[0-9]*; do
        [ "${proc#/proc/}" != 1 ] && [ -e "$proc/exe" ] && echo "${proc#/proc/}"
    done
}

# wait_gone SECONDS PID...: wait until none of the PIDs runs (sleeping, so
# that this shell reaps them), at most SECONDS; false if some still run.
wait_gone() {
    local ticks=$(($1 * 10)) pid running
    shift
    while [ "$ticks" -gt 0 ]; do
        running=""
        for pid in "$@"; do
            [ -e "/proc/$pid/exe" ] && running=1
        done
        [ -n "$running" ] || return 0
        sleep 0.1; ticks=$((ticks - 1))
    done
    return 1
}

# unmount_all: every mount but the kernel's file systems and the root, the
# innermost first; one that stays busy is made read-only. The data
# partition is then clean for the next boot's check.
unmount_all() {
    local mounts="" point
    while read -r _ point _; do
        case $point in /|/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
        mounts="$point $mounts"
    done < /proc/mounts
    for point in $mounts; do
        umount "$point" 2>/dev/null || mount -o remount,ro "$point" 2>/dev/null ||
            log_warn "cannot unmount $point, nor make it read-only"
    done
}

# shutdown_node ACTION: reboot, poweroff or halt, cleanly: KubeSolo gets
# SIGTERM and KUBESOLO_STOP_SECONDS, every other process SIGTERM and
# PROCESS_STOP_SECONDS, then SIGKILL; then the file systems are unmounted and
# synced before the kernel goes down.
shutdown_node() {
    trap '' TERM USR1 USR2  # one shutdown at a time
    set +x
    log "Shutting down ($1)"
    if [ -n "$KUBESOLO_PID" ]; then
        kill -TERM "$KUBESOLO_PID" 2>/dev/null
        wait_gone "$KUBESOLO_STOP_SECONDS" "$KUBESOLO_PID" ||
            log_warn "KubeSolo still runs after ${KUBESOLO_STOP_SECONDS}s:" \
                "it is killed with the rest"
    fi
    flush_logger  # KubeSolo's last lines reach the console before its logger is stopped
    kill -TERM -1 2>/dev/null
    # shellcheck disable=SC2046 # one word per PID
    wait_gone "$PROCESS_STOP_SECONDS" $(live_processes) || kill -KILL -1 2>/dev/null
    # shellcheck disable=SC2046
    wait_gone 5 $(live_processes)
    exec 7>&-
    unmount_all
    sync
    log_ok "File systems unmounted: $1"
    "$1" -f
}

# start_power_button: busybox acpid, which runs /etc/acpi/PWRF/00000080 (a
# poweroff) when the power button is pressed: ACPI's, or QEMU's
# system_powerdown. It reads the input devices there are when it starts, so
# it starts after stage 00's coldplug has loaded button and evdev.
start_power_button() {
    [ -f "$KUBESOLO_RUN/acpid.pid" ] && kill -0 "$(cat "$KUBESOLO_RUN/acpid.pid")" 2>/dev/null &&
        return 0
    set -- /dev/input/event*
    [ -e "$1" ] || { log_warn "no input devices: the power button does nothing"; return 0; }
    mkdir -p "$KUBESOLO_RUN"
    acpid -l /dev/null -p "$KUBESOLO_RUN/acpid.pid" ||
        log_warn "acpid did not start: the power button does nothing"
}

# handle_power_signals: what busybox's reboot, poweroff and halt send PID 1.
handle_power_signals() {
    trap 'shutdown_node reboot' TERM
    trap 'shutdown_node poweroff' USR2
    trap 'shutdown_node halt' USR1
}
