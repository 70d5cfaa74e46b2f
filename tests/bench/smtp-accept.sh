#!/bin/sh
# smtp-accept.sh - how fast smtp-relayd accepts mail, next to Postfix.
#
# smtp-source (20 sessions, 20,000 messages of 1 KB) against smtp-relayd and
# then against a private Postfix instance on the same machine, in the same
# run.  Both commit every message durably before their 250 (smtp-relayd:
# write, fsync, rename, fsync of the directory; Postfix: cleanup fsyncs the
# queue file).  Postfix's queue manager is disabled so that neither side
# delivers during the run, and in_flow_delay is 0 so Postfix is not throttled
# for lack of deliveries.  Prints messages/s for each, the ratio, and
# smtp-relayd's peak RSS (VmHWM): DATA is streamed to the queue's tmp/, so
# the bounded-memory case (issue 16) stays small:
#   MESSAGES=100 SESSIONS=100 SIZE=10000000 tests/bench/smtp-accept.sh
#
# Run by hand as root (Postfix needs it):  tests/bench/smtp-accept.sh
# Environment: MXB_BIN (default build/bin), MESSAGES (20000), SESSIONS (20),
# SIZE (1024), BENCH_DIR (default: a folder per MTA in
# /tmp/mxb-bench, see bench_folder in lib.sh).
set -eu
# The daemons refuse root without options { user }; a benchmark on loopback
# may keep it (docs/hardening.md).
export MXB_ALLOW_ROOT=1

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MXB_BIN:-$top/build/bin}
messages=${MESSAGES:-20000}
sessions=${SESSIONS:-20}
size=${SIZE:-1024}
relay_port=${RELAY_PORT:-22525}
postfix_port=${POSTFIX_PORT:-22526}
status_port=${STATUS_PORT:-22580}

BENCH_NAME=smtp-accept
. "$top/tests/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in /usr/sbin/smtp-source /usr/sbin/postfix "$bin/smtp-relayd"; do
	[ -x "$t" ] || die "$t is missing (make deps; make)"
done

bench_folders
relay_pid=
cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	postfix_stop "$pfdir"
	bench_folders_remove
}
trap cleanup EXIT INT TERM

# Run smtp-source against a port; prints the elapsed seconds.
blast() {
	t0=$(date +%s.%N)
	/usr/sbin/smtp-source -s "$sessions" -m "$messages" -l "$size" \
	    -f bench@client.test -t rcpt@example.test "127.0.0.1:$1" ||
	    die "smtp-source against port $1 failed"
	elapsed "$t0" "$(date +%s.%N)"
}

# --- smtp-relayd ---
cat > "$dir/relay.conf" <<EOF
options { directory "$dir"; };
relay {
    listen { 127.0.0.1 port $relay_port; };
    hostname "relay.bench.test";
    relay-domains { "example.test"; };
    trusted-networks { 127.0.0.1/32; };
    max-sessions 200; max-sessions-per-client 200;
    hold-delivery yes;    # measure accepting only
    status-listen 127.0.0.1 port $status_port;
};
EOF
"$bin/smtp-relayd" -c "$dir/relay.conf" >"$dir/relay.log" 2>&1 &
relay_pid=$!
wait_port 127.0.0.1 "$relay_port"

# --- Postfix: accepting only (no queue manager, no inflow throttle) ---
postfix_start "$pfdir" "$postfix_port" <<EOF
relayhost = [127.0.0.1]:9
in_flow_delay = 0
master_service_disable = qmgr.unix
EOF

echo "smtp-accept: $messages messages of $size octets, $sessions sessions, in $dir"
relay_s=$(blast "$relay_port")
relay_hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$relay_pid/status")
postfix_s=$(blast "$postfix_port")
relay_q=$(find "$dir/spool/queue" -type f | wc -l)
postfix_q=$(find "$pfdir/pf/spool/incoming" "$pfdir/pf/spool/active" -type f | wc -l)
[ "$relay_q" -ge "$messages" ] || die "smtp-relayd queued $relay_q of $messages"
[ "$postfix_q" -ge "$messages" ] || die "Postfix queued $postfix_q of $messages"
awk -v n="$messages" -v r="$relay_s" -v p="$postfix_s" 'BEGIN {
	printf "smtp-relayd: %8.0f messages/s (%.2f s)\n", n / r, r
	printf "postfix:     %8.0f messages/s (%.2f s)\n", n / p, p
	printf "ratio smtp-relayd/postfix: %.2f\n", p / r
}'
echo "smtp-relayd peak RSS (VmHWM): $((relay_hwm / 1024)) MB"
