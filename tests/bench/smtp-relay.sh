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
# SIZE (1024), BENCH_DIR (default: a new folder under /tmp).
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

die() { echo "smtp-relay bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in /usr/sbin/smtp-source /usr/sbin/smtp-sink /usr/sbin/postfix "$bin/smtp-relayd"; do
	[ -x "$t" ] || die "$t is missing (make deps; make)"
done

dir=${BENCH_DIR:-$(mktemp -d /tmp/mxb-bench.XXXXXX)}
chmod 755 "$dir"
relay_pid=
sink_pid=
cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null || true
	/usr/sbin/postfix -c "$dir/pf/etc" stop >/dev/null 2>&1 || true
	[ -z "${BENCH_DIR:-}" ] && rm -rf "$dir"
}
trap cleanup EXIT INT TERM

wait_port() {
	i=0
	until python3 -c "import socket; socket.create_connection(('$1', $2), 1)" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "nothing listens on $1 port $2"
		sleep 0.1
	done
}

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
postfix_sent() { grep -c 'status=sent' "$dir/pf/maillog" || true; }

# Send, wait until delivered; prints the elapsed seconds.
run() {
	t0=$(date +%s.%N)
	/usr/sbin/smtp-source -s "$sessions" -m "$messages" -l "$size" \
	    -f bench@client.test -t rcpt@outside.example "127.0.0.1:$1" ||
	    die "smtp-source against port $1 failed"
	wait_count "$2"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
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
mkdir -p "$dir/pf/etc" "$dir/pf/spool" "$dir/pf/data"
chown postfix "$dir/pf/data"
cat > "$dir/pf/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/pf/spool
data_directory = $dir/pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = [$sink]:$sink_port
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtputf8_enable = no
alias_maps =
alias_database =
maillog_file = /dev/stdout
smtpd_client_connection_count_limit = 0
default_process_limit = 200
default_destination_concurrency_limit = 20
biff = no
EOF
sed -n '/^POSTFIX_MASTER_CF/,/^"""/p' "$top/tests/integration/relay_util.py" |
    sed '1d;$d' | sed "s/{listen}/127.0.0.1:$postfix_port/" > "$dir/pf/etc/master.cf"
/usr/sbin/postfix -c "$dir/pf/etc" check || die "postfix check failed"
/usr/sbin/postfix -c "$dir/pf/etc" start-fg >"$dir/pf/maillog" 2>&1 &
wait_port 127.0.0.1 "$postfix_port"

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
