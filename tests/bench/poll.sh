#!/bin/sh
# poll.sh - brokerd polling a large fleet: CPU% and RSS of brokerd with
# 10,000 members at polling-interval 10, and failover convergence (time from
# a member going silent to its absence from the answers) against the bound
# 3 x polling-interval + dns-refresh.  Run by hand:
#
#   tests/bench/poll.sh [--smoke] [--members N] [--interval S] [--refresh S]
#                       [--seconds S] [BIN_DIR]
#
# The members are 127.10.x.y, answered by one process (poll-responder.py,
# IP_PKTINFO so each reply leaves from the polled address) with signed
# replies.  The responder shares the machine's cores with brokerd, so the
# CPU figure includes brokerd only (utime+stime from /proc over the window).
set -eu
# The daemons refuse root without options { user }; a benchmark on loopback
# may keep it (docs/hardening.md).
export MXB_ALLOW_ROOT=1

TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build/bin
MEMBERS=10000
INTERVAL=10
REFRESH=10
SECONDS_=30
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) MEMBERS=500; INTERVAL=2; REFRESH=1; SECONDS_=5 ;;
	--members) MEMBERS=$2; shift ;;
	--interval) INTERVAL=$2; shift ;;
	--refresh) REFRESH=$2; shift ;;
	--seconds) SECONDS_=$2; shift ;;
	-*) echo "usage: $0 [--smoke] [--members N] [--interval S] [--refresh S] [--seconds S] [BIN_DIR]" >&2; exit 64 ;;
	*) BIN=$1 ;;
	esac
	shift
done
for t in dig python3; do
	command -v "$t" >/dev/null 2>&1 || { echo "poll.sh: $t is not installed (make deps)" >&2; exit 1; }
done
[ -x "$BIN/brokerd" ] || { echo "poll.sh: $BIN/brokerd not built" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mxb-pollbench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}
DNS_PORT=$(free_port)
HTTP_PORT=$(free_port)
METRIC_PORT=$(free_port)
SECRET=bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg==
CLUSTER=smtp.mail.example.test

cat > "$WORK/zone" <<ZONE
\$ORIGIN mail.example.test.
\$TTL 300
@    SOA ns1 hostmaster 1 3600 900 604800 60
@    NS  ns1
ns1  A   127.0.0.1
ZONE
python3 - "$WORK" "$MEMBERS" "$INTERVAL" "$REFRESH" "$DNS_PORT" "$HTTP_PORT" "$METRIC_PORT" "$SECRET" <<'PY'
import sys
work, n, interval, refresh, dns, http, metric, secret = sys.argv[1:]
members = " ".join(f"127.10.{i // 250}.{i % 250 + 1};" for i in range(int(n)))
open(f"{work}/brokerd.conf", "w").write(f"""options {{ directory "{work}"; }};
key "lb-key" {{ algorithm hmac-sha256; secret "{secret}"; }};
broker {{ listen {{ 127.0.0.1 port {dns}; }}; status-listen 127.0.0.1 port {http};
  zone "mail.example.test" {{ file "{work}/zone"; }}; }};
cluster "smtp.mail.example.test" {{
  dns-ttl 5; dns-refresh {refresh}; polling-interval {interval}; max-members 5;
  failover 127.0.0.19; metric-port {metric}; key "lb-key";
  members {{ {members} }};
}};
""")
PY

python3 "$TOP/tests/bench/poll-responder.py" "$METRIC_PORT" "$SECRET" "$WORK/silence" &
PIDS="$PIDS $!"
"$BIN/brokerd" -c "$WORK/brokerd.conf" 2>"$WORK/brokerd.log" &
BROKERD=$!
PIDS="$PIDS $BROKERD"

answer() {
	dig +short +tries=1 +time=1 -p "$DNS_PORT" @127.0.0.1 "$CLUSTER" A 2>/dev/null | sort
}
now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

# Converged: five members of the fleet answered (not the failover).
i=0
until [ "$(answer | grep -c '^127\.10\.')" -eq 5 ]; do
	i=$((i + 1))
	[ $i -le $((INTERVAL * 40)) ] || { echo "poll.sh: no converged answer" >&2; tail "$WORK/brokerd.log" >&2; exit 1; }
	sleep 0.25
done
sleep "$INTERVAL" # one full polling cycle in steady state before measuring

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$BROKERD/stat"; }
c0=$(cpu_ticks); t0=$(now_ms)
sleep "$SECONDS_"
c1=$(cpu_ticks); t1=$(now_ms)
CPU=$(python3 -c "print(f'{($c1 - $c0) / $TCK * 100000 / ($t1 - $t0):.2f}')")
RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$BROKERD/status")
POLLS=$(python3 -c "
import json, urllib.request
d = json.load(urllib.request.urlopen('http://127.0.0.1:$HTTP_PORT/status'))
p = d['poller']
print(f\"sent {p['sent']} answered {p['answered']} timeouts {p['timeouts']} discarded {p['discarded']}\")")

# Failover convergence: silence one published member, time its absence.
VICTIM=$(answer | grep '^127\.10\.' | head -1)
echo "$VICTIM" > "$WORK/silence"
s0=$(now_ms)
BOUND=$((3 * INTERVAL + REFRESH))
while answer | grep -qx "$VICTIM"; do
	[ $(( $(now_ms) - s0 )) -le $(( (BOUND + 20) * 1000 )) ] || { echo "poll.sh: $VICTIM never left" >&2; exit 1; }
	sleep 0.1
done
CONV=$(( $(now_ms) - s0 ))

echo "poll.sh: $MEMBERS members, polling-interval $INTERVAL s, dns-refresh $REFRESH s"
echo "brokerd CPU: $CPU% of one core over ${SECONDS_} s (goal < 10%)"
echo "brokerd RSS: $((RSS / 1024)) MiB ($RSS kB)"
echo "poller: $POLLS"
echo "failover convergence: $((CONV / 1000)).$(printf '%03d' $((CONV % 1000))) s for $VICTIM (bound 3 x $INTERVAL + $REFRESH = $BOUND s, +1 s responder re-read)"
