#!/bin/sh
# smtp-accept.sh - how fast smtp-relayd accepts mail, next to Postfix.
#
# smtp-source (20 sessions, 20,000 messages of 1 KB) against smtp-relayd and
# then against a private Postfix instance on the same machine, in the same
# run.  Both commit every message durably before their 250 (smtp-relayd:
# write, fsync, rename, fsync of the directory; Postfix: cleanup fsyncs the
# queue file).  Postfix's queue manager is disabled so that neither side
# delivers during the run, and in_flow_delay is 0 so Postfix is not throttled
# for lack of deliveries.  Prints messages/s for each and the ratio.
#
# Run by hand as root (Postfix needs it):  tests/bench/smtp-accept.sh
# Environment: MXB_BIN (default build/bin), MESSAGES (20000), SESSIONS (20),
# SIZE (1024), BENCH_DIR (default: a new folder under /tmp).
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

die() { echo "smtp-accept: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in /usr/sbin/smtp-source /usr/sbin/postfix "$bin/smtp-relayd"; do
	[ -x "$t" ] || die "$t is missing (make deps; make)"
done

dir=${BENCH_DIR:-$(mktemp -d /tmp/mxb-bench.XXXXXX)}
chmod 755 "$dir"
relay_pid=
cleanup() {
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	/usr/sbin/postfix -c "$dir/pf/etc" stop >/dev/null 2>&1 || true
	[ -z "${BENCH_DIR:-}" ] && rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# Wait until a TCP port answers (bounded).
wait_port() {
	i=0
	until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 1)" \
	    2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || die "nothing listens on port $1"
		sleep 0.1
	done
}

# Run smtp-source against a port; prints the elapsed seconds.
blast() {
	t0=$(date +%s.%N)
	/usr/sbin/smtp-source -s "$sessions" -m "$messages" -l "$size" \
	    -f bench@client.test -t rcpt@example.test "127.0.0.1:$1" ||
	    die "smtp-source against port $1 failed"
	t1=$(date +%s.%N)
	echo "$t0 $t1" | awk '{ printf "%.3f\n", $2 - $1 }'
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
wait_port "$relay_port"

# --- Postfix ---
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
relayhost = [127.0.0.1]:9
smtp_dns_support_level = disabled
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtputf8_enable = no
alias_maps =
alias_database =
maillog_file = /dev/stdout
in_flow_delay = 0
master_service_disable = qmgr.unix
smtpd_client_connection_count_limit = 0
default_process_limit = 200
biff = no
EOF
sed -n '/^POSTFIX_MASTER_CF/,/^"""/p' "$top/tests/integration/relay_util.py" |
    sed '1d;$d' | sed "s/{listen}/127.0.0.1:$postfix_port/" > "$dir/pf/etc/master.cf"
/usr/sbin/postfix -c "$dir/pf/etc" check || die "postfix check failed"
/usr/sbin/postfix -c "$dir/pf/etc" start-fg >"$dir/pf/maillog" 2>&1 &
wait_port "$postfix_port"

echo "smtp-accept: $messages messages of $size octets, $sessions sessions, in $dir"
relay_s=$(blast "$relay_port")
postfix_s=$(blast "$postfix_port")
relay_q=$(find "$dir/spool/queue" -type f | wc -l)
postfix_q=$(find "$dir/pf/spool/incoming" "$dir/pf/spool/active" -type f | wc -l)
[ "$relay_q" -ge "$messages" ] || die "smtp-relayd queued $relay_q of $messages"
[ "$postfix_q" -ge "$messages" ] || die "Postfix queued $postfix_q of $messages"
awk -v n="$messages" -v r="$relay_s" -v p="$postfix_s" 'BEGIN {
	printf "smtp-relayd: %8.0f messages/s (%.2f s)\n", n / r, r
	printf "postfix:     %8.0f messages/s (%.2f s)\n", n / p, p
	printf "ratio smtp-relayd/postfix: %.2f\n", p / r
}'
