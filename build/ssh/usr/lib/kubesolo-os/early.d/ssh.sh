# shellcheck shell=sh
# SSH for debugging, only in images made by `kubesolo-harness inject-ssh`
# (docs/architecture.md "SSH"): Debian's dropbear on port 22, started right
# after stage 00 in a session of its own, so it outlives the exec of stage 90.
# Key-only: password logins are off (-s), and root has no password; the key
# is /root/.ssh/authorized_keys. Host keys are made at the first connection
# of each boot (-R), in RAM. Sessions get a fixed environment: the OS's own
# directories on PATH, nothing from init's.

PIDFILE=$KUBESOLO_RUN/dropbear.pid
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    return 0
fi
mkdir -p /etc/dropbear
if env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    setsid /usr/sbin/dropbear -R -s -g -e -E -P "$PIDFILE" -p 22 \
    </dev/null >>"$KUBESOLO_RUN/dropbear.log" 2>&1; then
    log "SSH started (dropbear, key-only) on port 22"
else
    log_warn "SSH (dropbear) did not start: see $KUBESOLO_RUN/dropbear.log"
fi
