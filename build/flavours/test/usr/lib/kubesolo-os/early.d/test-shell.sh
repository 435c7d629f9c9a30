# shellcheck shell=sh
# Test flavour only: start the harness's test shell on the virtio port named
# org.kubesolo.shell, right after stage 00. It runs in its own session, so it
# outlives the emergency shell and the exec of stage 90.

PIDFILE=$KUBESOLO_RUN/test-shell.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    return 0
fi
setsid /usr/lib/kubesolo-os/bin/test-shell </dev/null >/dev/null 2>&1 &
echo $! > "$PIDFILE"
log "Test shell started (test flavour)"
