#!/bin/sh
# resolver.sh - route 1,000 distinct domains concurrently against NSD on
# loopback (each domain: MX lookup, then A and AAAA of its own exchange, so
# 3,000 DNS exchanges), then measure cached routes per second.
#
#   tests/bench/resolver.sh [BIN_DIR]     (default build/bin)
#
# Prints the wall time of the cold concurrent run, the time of one cold
# route alone (one MX + one address round trip), the ratio to routing them
# one after another, and the cached routing rate.  On loopback the cold run
# is bound by NSD's single-thread query rate (3,000 exchanges), not by
# 1,000 round trips; NSD's response rate limiting is switched off, since a
# burst from one client would otherwise be slipped (TC) or dropped.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$top/build/bin}
n=${N:-1000}
repeat=${REPEAT:-50}
command -v nsd >/dev/null || { echo "resolver.sh: nsd is not installed (make deps)" >&2; exit 1; }
[ -x "$bin/mxroute" ] || { echo "resolver.sh: $bin/mxroute not built" >&2; exit 1; }

dir=$(mktemp -d)
nsd_pid=
cleanup() {
	[ -n "$nsd_pid" ] && kill "$nsd_pid" 2>/dev/null && wait "$nsd_pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(( 20000 + $$ % 10000 ))
{
	printf '$ORIGIN bench.test.\n$TTL 3600\n'
	printf '@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n'
	i=1
	while [ $i -le "$n" ]; do
		printf 'd%d MX 10 mx%d\nmx%d A 198.51.%d.%d\n' $i $i $i $((100 + i / 250)) $((i % 250 + 1))
		i=$((i + 1))
	done
} > "$dir/bench.test.zone"
cat > "$dir/nsd.conf" <<CONF
server:
    ip-address: 127.0.0.1@$port
    username: ""
    chroot: ""
    zonesdir: "$dir"
    pidfile: "$dir/nsd.pid"
    zonelistfile: "$dir/zonelist"
    xfrdfile: "$dir/xfrd"
    xfrdir: "$dir"
    database: ""
    server-count: 1
    verbosity: 0
    rrl-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.test
    zonefile: "bench.test.zone"
CONF
nsd -d -c "$dir/nsd.conf" >"$dir/nsd.log" 2>&1 &
nsd_pid=$!
cat > "$dir/mxroute.conf" <<CONF
resolver { nameservers { 127.0.0.1 port $port; }; timeout 2s; attempts 2; cache-size 100000; };
relay { hostname "bench-relay.example"; };
CONF
# Wait (bounded) until NSD answers.
tries=0
until "$bin/mxroute" -c "$dir/mxroute.conf" d1.bench.test >/dev/null 2>&1; do
	tries=$((tries + 1))
	[ $tries -lt 100 ] || { echo "resolver.sh: NSD did not start" >&2; cat "$dir/nsd.log" >&2; exit 1; }
	sleep 0.1
done

domains=$(i=1; while [ $i -le "$n" ]; do printf 'd%d.bench.test ' $i; i=$((i + 1)); done)
# One cold route alone: the round-trip baseline (d2 was never asked).
single=$(MXROUTE_TIMING=1 "$bin/mxroute" -c "$dir/mxroute.conf" d2.bench.test 2>&1 >/dev/null |
    sed -n 's/.* in \([0-9.]*\) s$/\1/p')
# shellcheck disable=SC2086
out=$("$bin/mxroute" -c "$dir/mxroute.conf" --repeat "$repeat" --json $domains 2>"$dir/timing")
routed=$(printf '%s\n' "$out" | grep -o '"status": *"ok"' | wc -l)
cat "$dir/timing"
cold=$(sed -n 's/.*first pass: [0-9]* routes in \([0-9.]*\) s.*/\1/p' "$dir/timing")
rate=$(sed -n 's/.*: \([0-9]*\) routes\/s/\1/p' "$dir/timing")
echo "routed: $routed of $n"
echo "cold, $n domains concurrently: ${cold} s wall; one domain alone: ${single} s"
awk -v c="$cold" -v s="$single" -v n="$n" 'BEGIN { if (s > 0 && c > 0)
    printf "sequential estimate: %.3f s (%d x one route); concurrent run: %.2f of it, %.0f single-route times\n", n * s, n, c / (n * s), c / s }'
echo "cached: $rate routes/s"
[ "$routed" -eq "$n" ]
