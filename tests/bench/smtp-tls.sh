#!/bin/sh
# smtp-tls.sh - relay throughput with STARTTLS on both sides, smtp-relayd and
# a private Postfix instance with the same TLS settings, in the same run:
#
#   smtp-tls-tool source --STARTTLS--> MTA --STARTTLS (policy encrypt)--> smtp-tls-tool sink
#
# Postfix's smtp-source and smtp-sink speak no TLS, so the load client and
# the next hop are tests/bench/smtp-tls-tool.c (built here with cc).  Both
# MTAs fsync before 250 and make 20 concurrent deliveries.  For each MTA it
# prints accepted messages/s (the client's clock), relayed messages/s (first
# message sent to last delivered), and then the inbound handshake rate (a
# new connection and handshake per message).  smtp-relayd's plaintext rates
# (same client, relay and sink, STARTTLS off on both sides) are measured in
# the same run for the cost of TLS.
#
# Run by hand as root:  tests/bench/smtp-tls.sh
# Environment: MXB_BIN (default build/bin), MESSAGES (5000), SESSIONS (20),
# SIZE (1024), HANDSHAKES (2000), BENCH_DIR (default: a folder per MTA in
# /tmp/mxb-bench, see bench_folder in lib.sh).
set -eu
export MXB_ALLOW_ROOT=1

top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MXB_BIN:-$top/build/bin}
messages=${MESSAGES:-5000}
sessions=${SESSIONS:-20}
size=${SIZE:-1024}
handshakes=${HANDSHAKES:-2000}
relay_port=${RELAY_PORT:-22545}
plain_port=${PLAIN_PORT:-22548}
postfix_port=${POSTFIX_PORT:-22546}
sink_port=${SINK_PORT:-22547}
status_port=${STATUS_PORT:-22591}
plain_status_port=${PLAIN_STATUS_PORT:-22592}
sink=127.0.0.2

BENCH_NAME="smtp-tls bench"
. "$top/tests/bench/lib.sh"
[ "$(id -u)" = 0 ] || die "run as root (a private Postfix instance needs it)"
for t in /usr/sbin/postfix "$bin/smtp-relayd" /usr/bin/openssl; do
	[ -x "$t" ] || die "$t is missing (make deps; make)"
done

bench_folders
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	postfix_stop "$pfdir"
	bench_folders_remove
}
trap cleanup EXIT INT TERM

tool=$dir/smtp-tls-tool
cc -O2 -o "$tool" "$top/tests/bench/smtp-tls-tool.c" -lssl -lcrypto -lpthread ||
    die "cannot build smtp-tls-tool"
# One P-256 certificate for every server: the same handshake cost everywhere.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null ||
    die "cannot make a certificate"
chmod 644 "$dir/key.pem"

"$tool" sink -c "$dir/cert.pem" -k "$dir/key.pem" "$sink" "$sink_port" &
pids="$pids $!"
wait_port "$sink" "$sink_port"

delivered() {
	python3 -c "import json, urllib.request as u; print(json.load(u.urlopen(
	    'http://127.0.0.1:$1/status'))['delivery']['delivered'])"
}
postfix_sent() { grep -c 'status=sent' "$pfdir/pf/maillog" || true; }

# relay_conf NAME PORT STATUS-PORT TLS-LINES
relay_conf() {
	mkdir -p "$dir/$1"
	cat > "$dir/$1/relay.conf" <<EOF
options { directory "$dir/$1"; };
resolver {
    nameservers { 127.0.0.1 port 9; };
    zones { "zone.invalid"; };
    gateway "[$sink]";
};
relay {
    listen { 127.0.0.1 port $2; };
    hostname "relay.bench.test";
    trusted-networks { 127.0.0.1/32; };
    max-sessions 200; max-sessions-per-client 200;
    max-deliveries 20; max-deliveries-per-destination 20;
    remote-port $sink_port;
    status-listen 127.0.0.1 port $3;
$4
};
EOF
	"$bin/smtp-relayd" -c "$dir/$1/relay.conf" >"$dir/$1/relay.log" 2>&1 &
	pids="$pids $!"
	wait_port 127.0.0.1 "$2"
}
relay_conf tls "$relay_port" "$status_port" "
    tls { certificate \"$dir/cert.pem\"; key \"$dir/key.pem\"; };
    tls-policy \"outside.example\" encrypt;"

postfix_start "$pfdir" "$postfix_port" <<EOF
relayhost = [$sink]:$sink_port
default_destination_concurrency_limit = 20
smtpd_tls_security_level = may
smtpd_tls_cert_file = $dir/cert.pem
smtpd_tls_key_file = $dir/key.pem
smtp_tls_security_level = encrypt
smtp_tls_loglevel = 1
EOF

# send PORT COUNT-COMMAND [source options]: accepted and relayed seconds.
send() {
	port=$1 count=$2
	shift 2
	base=$(eval "$count")
	t0=$(date +%s.%N)
	"$tool" source -s "$sessions" -m "$messages" -l "$size" "$@" 127.0.0.1 "$port" >/dev/null ||
	    die "smtp-tls-tool against port $port failed"
	t1=$(date +%s.%N)
	i=0
	until [ $(($(eval "$count") - base)) -ge "$messages" ]; do
		i=$((i + 1))
		[ $i -lt 6000 ] || die "only $(($(eval "$count") - base)) of $messages relayed via port $port"
		sleep 0.05
	done
	echo "$(elapsed "$t0" "$t1") $(elapsed "$t0" "$(date +%s.%N)")"
}

echo "smtp-tls bench: $messages messages of $size octets, $sessions sessions, in $dir"
set -- $(send "$relay_port" "delivered $status_port")
r_acc=$1 r_rel=$2
set -- $(send "$postfix_port" postfix_sent)
p_acc=$1 p_rel=$2
grep -q 'Trusted TLS connection\|Untrusted TLS connection\|Anonymous TLS connection' \
    "$pfdir/pf/maillog" || die "Postfix did not deliver over TLS"

# The same relay, client and sink without TLS on either side, for the cost of TLS.
relay_conf plain "$plain_port" "$plain_status_port" "
    tls-policy \"outside.example\" none;"
set -- $(send "$plain_port" "delivered $plain_status_port" -p)
plain_acc=$1 plain_rel=$2

# Handshakes: one message per connection.
hs() { "$tool" source -r -s "$sessions" -m "$handshakes" -l "$size" 127.0.0.1 "$1" |
	sed -n 's/.* \([0-9]*\) handshakes\/s.*/\1/p'; }
r_hs=$(hs "$relay_port")
p_hs=$(hs "$postfix_port")

awk -v n="$messages" -v ra="$r_acc" -v rr="$r_rel" -v pa="$p_acc" -v pr="$p_rel" \
    -v pla="$plain_acc" -v pl="$plain_rel" -v rh="$r_hs" -v ph="$p_hs" 'BEGIN {
	printf "smtp-relayd TLS: %7.0f accepted/s %7.0f relayed/s %6d handshakes/s\n", n / ra, n / rr, rh
	printf "postfix TLS:     %7.0f accepted/s %7.0f relayed/s %6d handshakes/s\n", n / pa, n / pr, ph
	printf "smtp-relayd plaintext: %7.0f accepted/s %7.0f relayed/s\n", n / pla, n / pl
	printf "ratio smtp-relayd/postfix: accepted %.2f relayed %.2f handshakes %.2f\n", pa / ra, pr / rr, rh / ph
	printf "smtp-relayd rate with TLS / without: accepted %.2f relayed %.2f\n", pla / ra, pl / rr
}'
