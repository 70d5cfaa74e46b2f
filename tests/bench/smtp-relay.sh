#!/bin/sh
# smtp-relay.sh - end-to-end relay throughput: smtp-source -> MTA -> smtp-sink,
# for smtp-relayd and for a private Postfix instance, in the same run.
#
# Both MTAs accept durably (fsync before 250) and relay every message to the
# same smtp-sink on 127.0.0.2 (smtp-relayd through a gateway literal,
# Postfix through relayhost), 20 concurrent deliveries each (Postfix's
# default destination concurrency).  The clock runs from the first message
# sent until the last one was delivered (smtp-relayd: its /status delivery
# counter; Postfix: "status=sent" lines in its log).  Prints delivered
# messages/s for each and the ratio.
#
# Run by hand as root (Postfix needs it):  tests/bench/smtp-relay.sh
# Environment: MXB_BIN (default build/bin), MESSAGES (5000), SESSIONS (20),
# SIZE (1024), BENCH_DIR (default: a folder per MTA in
# /tmp/mxb-bench, see bench_folder in lib.sh).
set -eu
# The daemons refuse root without options { user }; a benchmark on loopback
# may keep it (docs/hardening.md).
export MXB_ALLOW_ROOT=1

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MXB_BIN:-$top/build/bin}
messages=${MESSAGES:-5000}
sessions=${SESSIONS:-20}
size=${SIZE:-1024}
relay_port=${RELAY_PORT:-22535}
postfix_port=${POSTFIX_PORT:-22536}
sink_port=${SINK_PORT:-22537}
status_port=${STATUS_PORT:-22590}
sink=127.0.0.2

BENCH_NAME="smtp-relay bench"
. "$top/tests/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix "$bin/smtp-relayd"; do
	[ -x "$t" ] || die "$t is missing (make deps; make)"
done

bench_folders
relay_pid=
sink_pid=
cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
	postfix_stop "$pfdir"
	bench_folders_remove
}
trap cleanup EXIT INT TERM

# Poll `$1` (a shell command printing a number) until it reaches $messages.
wait_count() {
	i=0
	until [ "$(eval "$1")" -ge "$messages" ]; do
		i=$((i + 1))
		[ $i -lt 6000 ] || die "only $(eval "$1") of $messages delivered"
		sleep 0.05
	done
}

relay_delivered() {
	python3 -c "import json, urllib.request as u; print(json.load(u.urlopen(
	    'http://127.0.0.1:$status_port/status'))['delivery']['delivered'])"
}
postfix_sent() { grep -c 'status=sent' "$pfdir/pf/maillog" || true; }

# Send, wait until delivered; prints the elapsed seconds.
run() {
	t0=$(date +%s.%N)
	/usr/sbin/smtp-source -s "$sessions" -m "$messages" -l "$size" \
	    -f bench@client.test -t rcpt@outside.example "127.0.0.1:$1" ||
	    die "smtp-source against port $1 failed"
	wait_count "$2"
	elapsed "$t0" "$(date +%s.%N)"
}

/usr/sbin/smtp-sink -u postfix -c "$sink:$sink_port" 1000 >/dev/null 2>&1 &
sink_pid=$!
wait_port "$sink" "$sink_port"

# --- smtp-relayd: everything outside zone.invalid goes to the sink ---
cat > "$dir/relay.conf" <<EOF
options { directory "$dir"; };
resolver {
    nameservers { 127.0.0.1 port 9; };
    zones { "zone.invalid"; };
    gateway "[$sink]";
};
relay {
    listen { 127.0.0.1 port $relay_port; };
    hostname "relay.bench.test";
    trusted-networks { 127.0.0.1/32; };
    max-sessions 200; max-sessions-per-client 200;
    max-deliveries 20; max-deliveries-per-destination 20;
    remote-port $sink_port;
    status-listen 127.0.0.1 port $status_port;
};
EOF
"$bin/smtp-relayd" -c "$dir/relay.conf" >"$dir/relay.log" 2>&1 &
relay_pid=$!
wait_port 127.0.0.1 "$relay_port"

# --- Postfix, delivering to the same sink ---
postfix_start "$pfdir" "$postfix_port" <<EOF
relayhost = [$sink]:$sink_port
smtp_tls_security_level = none
default_destination_concurrency_limit = 20
EOF

echo "smtp-relay bench: $messages messages of $size octets, $sessions sessions, in $dir"
relay_s=$(run "$relay_port" relay_delivered)
postfix_s=$(run "$postfix_port" postfix_sent)
left=$(find "$dir/spool/queue" -type f | wc -l)
[ "$left" -eq 0 ] || die "smtp-relayd still holds $left messages"
awk -v n="$messages" -v r="$relay_s" -v p="$postfix_s" 'BEGIN {
	printf "smtp-relayd: %8.0f messages/s delivered (%.2f s)\n", n / r, r
	printf "postfix:     %8.0f messages/s delivered (%.2f s)\n", n / p, p
	printf "ratio smtp-relayd/postfix: %.2f\n", p / r
}'
