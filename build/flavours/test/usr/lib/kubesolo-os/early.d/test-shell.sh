# shellcheck shell=sh
# Test flavour only: start the harness's test shell right after stage 00, on
# the virtio port named org.kubesolo.shell (QEMU) or, with the boot parameter
# kubesolo.testshell=TTY (e.g. ttyS1, a board's second UART), on that tty.
# It runs in its own session, so it outlives the emergency shell and the exec
# of stage 90. Stage 10 has not run yet: the parameter is read here, with
# stage 10's splitter (functions.sh cmdline_words: double quotes group words).

PIDFILE=$KUBESOLO_RUN/test-shell.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    return 0
fi
tty=""
while IFS= read -r word; do
    case $word in kubesolo.testshell=*) tty=${word#*=} ;; esac
done <<WORDS
$(cmdline_words /proc/cmdline)
WORDS
case $tty in
    *[!A-Za-z0-9]* | [!t]*)
        log_warn "kubesolo.testshell=\"$(printable "$tty")\" ignored: not a tty name such as ttyS1"
        tty="" ;;
esac
setsid /usr/lib/kubesolo-os/bin/test-shell ${tty:+"$tty"} </dev/null >/dev/null 2>&1 &
echo $! > "$PIDFILE"
log "Test shell started (test flavour) on ${tty:-the virtio port}"
