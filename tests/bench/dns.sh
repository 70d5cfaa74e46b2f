#!/bin/sh
# dns.sh - benchmark brokerd against NSD and gdnsd (and Knot for the CPU
# cost) on the same zone and query mix, with dnsperf.  Run by hand:
#
#   tests/bench/dns.sh [--smoke] [--runs N] [--seconds S] [--rate Q] [BUILD_BIN]
#
# Query mix: 70% one name with 6 A records, 20% other static names, 10%
# NXDOMAIN.  Max-throughput runs are interleaved (brokerd, nsd, gdnsd, then
# again) and the median is reported; a second phase sends a fixed rate
# (dnsperf -Q) and reports each server's CPU% (utime+stime over the run),
# which is the cost per query.  Every server gets 2 UDP threads.  On a small
# machine dnsperf shares the cores with the server: the figures are
# indicative, the ratios are what to look at.
#
# DNSSEC phase (issue 18): the same mix with the DO bit (dnsperf -D) against
# brokerd with the zone signed (ldns-keygen KSK + ZSK), brokerd unsigned and
# Knot with mod-onlinesign, at max rate (interleaved, median) and at the
# fixed rate (CPU%); then a random-subdomain NXDOMAIN flood with DO at the
# fixed rate: CPU% and answers per second of signed brokerd and of Knot.
set -eu
# The daemons refuse root without options { user }; a benchmark on loopback
# may keep it (docs/hardening.md).
export MXB_ALLOW_ROOT=1

TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/build/bin
RUNS=3
SECONDS_=15
RATE=50000
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) RUNS=1; SECONDS_=2; RATE=5000 ;;
	--runs) RUNS=$2; shift ;;
	--seconds) SECONDS_=$2; shift ;;
	--rate) RATE=$2; shift ;;
	-*) echo "usage: $0 [--smoke] [--runs N] [--seconds S] [--rate Q] [BIN_DIR]" >&2; exit 64 ;;
	*) BIN=$1 ;;
	esac
	shift
done

for t in dnsperf nsd gdnsd knotd python3 ldns-keygen; do
	command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] ||
	    { echo "dns.sh: $t is not installed (make deps)" >&2; exit 1; }
done
[ -x "$BIN/brokerd" ] || { echo "dns.sh: $BIN/brokerd not built" >&2; exit 1; }

WORK=$(mktemp -d /tmp/mxb-bench.XXXXXX)
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	# A server still writing as it exits (Knot's databases) can refill a
	# folder while rm empties it: try again once it is gone.
	rm -rf "$WORK" 2>/dev/null || { sleep 1; rm -rf "$WORK"; }
}
trap cleanup EXIT INT TERM

ZONE=bench.example.test
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- the zone and the query file ---------------------------------------
{
	echo "\$ORIGIN $ZONE."
	echo "\$TTL 300"
	echo "@ IN SOA ns1 hostmaster 1 3600 900 604800 60"
	echo "@ NS ns1"
	echo "@ MX 10 mx1"
	echo "ns1 A 192.0.2.1"
	for i in 1 2 3 4 5 6; do echo "smtp A 192.0.2.1$i"; done
	for i in $(seq 1 20); do echo "host$i A 198.51.100.$i"; done
	echo "mx1 A 192.0.2.2"
	echo "www CNAME mx1"
} > "$WORK/zone"
{
	for i in $(seq 1 70); do echo "smtp.$ZONE A"; done
	for i in $(seq 1 20); do echo "host$i.$ZONE A"; done
	for i in $(seq 1 10); do echo "nx$i.$ZONE A"; done
} | python3 -c 'import random,sys; l=sys.stdin.readlines(); random.Random(1).shuffle(l); sys.stdout.writelines(l)' > "$WORK/queries"

# ---- servers -----------------------------------------------------------
start_brokerd() {
	port=$1
	cat > "$WORK/brokerd.conf" <<EOF
broker {
    listen { 127.0.0.1 port $port; };
    threads 2;
    zone "$ZONE" { file "$WORK/zone"; };
};
EOF
	"$BIN/brokerd" -c "$WORK/brokerd.conf" > "$WORK/brokerd.log" 2>&1 &
	echo $!
}

start_nsd() {
	port=$1
	mkdir -p "$WORK/nsd"
	cat > "$WORK/nsd/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1@$port
  server-count: 2
  username: ""
  pidfile: "$WORK/nsd/nsd.pid"
  zonesdir: "$WORK"
  database: ""
  zonelistfile: "$WORK/nsd/zone.list"
  xfrdfile: "$WORK/nsd/xfrd.state"
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: no
zone:
  name: $ZONE
  zonefile: "$WORK/zone"
EOF
	nsd -d -c "$WORK/nsd/nsd.conf" > "$WORK/nsd.log" 2>&1 &
	echo $!
}

start_gdnsd() {
	port=$1
	mkdir -p "$WORK/gdnsd/zones" "$WORK/gdnsd/run" "$WORK/gdnsd/state"
	cp "$WORK/zone" "$WORK/gdnsd/zones/$ZONE"
	cat > "$WORK/gdnsd/config" <<EOF
options => {
  listen => [ 127.0.0.1 ]
  dns_port => $port
  udp_threads => 2
  tcp_threads => 1
  run_dir => "$WORK/gdnsd/run"
  state_dir => "$WORK/gdnsd/state"
}
EOF
	gdnsd -c "$WORK/gdnsd" start > "$WORK/gdnsd.log" 2>&1 &
	echo $!
}

start_knot() {
	port=$1
	mkdir -p "$WORK/knot"
	cat > "$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$port
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$WORK/knot"
zone:
  - domain: $ZONE
    file: "$WORK/zone"
EOF
	knotd -c "$WORK/knot/knot.conf" > "$WORK/knot.log" 2>&1 &
	echo $!
}

start_brokerd_signed() {
	port=$1
	mkdir -p "$WORK/keys"
	(cd "$WORK/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$ZONE" >/dev/null &&
	    ldns-keygen -a ECDSAP256SHA256 "$ZONE" >/dev/null)
	cat > "$WORK/brokerd-signed.conf" <<EOF
broker {
    listen { 127.0.0.1 port $port; };
    threads 2;
    state-file "$WORK/brokerd-signed.state";
    control-socket "$WORK/brokerd-signed.sock";
    zone "$ZONE" { file "$WORK/zone"; dnssec { key-directory "$WORK/keys"; }; };
};
EOF
	"$BIN/brokerd" -c "$WORK/brokerd-signed.conf" > "$WORK/brokerd-signed.log" 2>&1 &
	echo $!
}

start_knot_signed() {
	port=$1
	mkdir -p "$WORK/knots"
	cat > "$WORK/knots/knot.conf" <<EOF
server:
    rundir: "$WORK/knots"
    listen: 127.0.0.1@$port
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$WORK/knots"
zone:
  - domain: $ZONE
    file: "$WORK/zone"
    module: mod-onlinesign
EOF
	knotd -c "$WORK/knots/knot.conf" > "$WORK/knots.log" 2>&1 &
	echo $!
}

wait_answer() {
	port=$1
	for _ in $(seq 1 100); do
		if dig +short +time=1 +tries=1 -p "$port" @127.0.0.1 "smtp.$ZONE" A 2>/dev/null |
		    grep -q 192.0.2; then
			return 0
		fi
		sleep 0.1
	done
	echo "dns.sh: server on port $port does not answer" >&2
	exit 1
}

# A server and all its descendants (NSD forks xfrd, main and servers).
tree_pids() {
	ps -eo pid=,ppid= | awk -v root="$1" '
	    { parent[$1] = $2 }
	    END {
		for (p in parent) {
			for (q = p; q != "" && q != 1 && q != 0; q = parent[q])
				if (q == root) { print p; break }
		}
	    }'
}

cpu_ticks() {
	t=0
	for p in $(tree_pids "$1"); do
		[ -r "/proc/$p/stat" ] || continue
		# utime and stime, counted after "(comm)", which may hold spaces.
		v=$(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')
		t=$((t + v))
	done
	echo "$t"
}

rss_kb() {
	t=0
	for p in $(tree_pids "$1"); do
		v=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

qps() {
	port=$1
	shift
	dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -l "$SECONDS_" -c 8 -T 1 "$@" 2>&1 |
	    awk '/Queries per second/ { print $4 } /Queries lost/ { lost = $3 } END { }'
}

BP=$(free_port); NP=$(free_port); GP=$(free_port); KP=$(free_port)
B=$(start_brokerd "$BP"); PIDS="$PIDS $B"
N=$(start_nsd "$NP"); PIDS="$PIDS $N"
G=$(start_gdnsd "$GP"); PIDS="$PIDS $G"
K=$(start_knot "$KP"); PIDS="$PIDS $K"
for p in $BP $NP $GP $KP; do wait_answer "$p"; done

echo "== max throughput: $RUNS run(s) x ${SECONDS_}s each, interleaved"
: > "$WORK/results"
for run in $(seq 1 "$RUNS"); do
	for s in brokerd:$BP nsd:$NP gdnsd:$GP; do
		name=${s%%:*}
		port=${s#*:}
		q=$(qps "$port")
		echo "$name $q" >> "$WORK/results"
		printf '  run %d %-8s %12s q/s\n' "$run" "$name" "$q"
	done
done

echo "== fixed rate ${RATE} q/s for ${SECONDS_}s: CPU% of the server"
for s in brokerd:$BP:$B nsd:$NP:$N gdnsd:$GP:$G knot:$KP:$K; do
	name=${s%%:*}
	rest=${s#*:}
	port=${rest%%:*}
	pid=${rest#*:}
	t0=$(cpu_ticks "$pid")
	q=$(qps "$port" -Q "$RATE")
	t1=$(cpu_ticks "$pid")
	hz=$(getconf CLK_TCK)
	cpu=$(python3 -c "print(f'{($t1 - $t0) / $hz / $SECONDS_ * 100:.1f}')")
	echo "cpu $name $cpu" >> "$WORK/results"
	printf '  %-8s %12s q/s answered  CPU %6s%%\n' "$name" "$q" "$cpu"
done

for s in brokerd:$B nsd:$N gdnsd:$G knot:$K; do
	echo "rss ${s%%:*} $(rss_kb "${s#*:}")" >> "$WORK/results"
done

# ---- DNSSEC: DO-bit queries, signed brokerd vs unsigned vs Knot onlinesign
SP=$(free_port); OP=$(free_port)
S=$(start_brokerd_signed "$SP"); PIDS="$PIDS $S"
O=$(start_knot_signed "$OP"); PIDS="$PIDS $O"
for p in $SP $OP; do wait_answer "$p"; done
for p in $SP $OP; do
	dig +dnssec +short -p "$p" @127.0.0.1 "smtp.$ZONE" A | grep -q '^A ' ||
	    { echo "dns.sh: the server on port $p gives no RRSIG" >&2; exit 1; }
done
python3 -c "
import random
r = random.Random(2)
for _ in range(200000):
    print('%08x.$ZONE A' % r.getrandbits(32))" > "$WORK/flood"

echo "== DNSSEC: DO=1 mix, max throughput, $RUNS run(s), interleaved"
for run in $(seq 1 "$RUNS"); do
	for s in brokerd:$BP brokerd-signed:$SP knot-onlinesign:$OP; do
		name=${s%%:*}
		port=${s#*:}
		q=$(qps "$port" -D)
		echo "do-$name $q" >> "$WORK/results"
		printf '  run %d %-16s %12s q/s\n' "$run" "$name" "$q"
	done
done
echo "== DNSSEC: DO=1 mix at ${RATE} q/s: CPU%"
for s in brokerd:$BP:$B brokerd-signed:$SP:$S knot-onlinesign:$OP:$O; do
	name=${s%%:*}
	rest=${s#*:}
	port=${rest%%:*}
	pid=${rest#*:}
	t0=$(cpu_ticks "$pid")
	q=$(qps "$port" -D -Q "$RATE")
	t1=$(cpu_ticks "$pid")
	cpu=$(python3 -c "print(f'{($t1 - $t0) / $(getconf CLK_TCK) / $SECONDS_ * 100:.1f}')")
	echo "docpu do-$name $cpu" >> "$WORK/results"
	printf '  %-16s %12s q/s answered  CPU %6s%%\n' "$name" "$q" "$cpu"
done
echo "== DNSSEC: random-subdomain NXDOMAIN flood, DO=1, ${RATE} q/s: CPU%"
for s in brokerd-signed:$SP:$S knot-onlinesign:$OP:$O; do
	name=${s%%:*}
	rest=${s#*:}
	port=${rest%%:*}
	pid=${rest#*:}
	t0=$(cpu_ticks "$pid")
	q=$(dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/flood" -l "$SECONDS_" -c 8 -T 1 -D \
	    -Q "$RATE" 2>&1 | awk '/Queries per second/ { print $4 }')
	t1=$(cpu_ticks "$pid")
	cpu=$(python3 -c "print(f'{($t1 - $t0) / $(getconf CLK_TCK) / $SECONDS_ * 100:.1f}')")
	echo "flood $name $cpu $q" >> "$WORK/results"
	printf '  %-16s %12s NXDOMAIN/s  CPU %6s%%\n' "$name" "$q" "$cpu"
done

python3 - "$WORK/results" <<'EOF'
import statistics, sys
qps, cpu, rss = {}, {}, {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[0] == "cpu":
        cpu[f[1]] = float(f[2])
    elif f[0] == "docpu":
        cpu[f[1]] = float(f[2])
    elif f[0] == "flood":
        cpu["flood-" + f[1]] = float(f[2])
    elif f[0] == "rss":
        rss[f[1]] = int(f[2])
    elif len(f) == 2 and f[1]:
        qps.setdefault(f[0], []).append(float(f[1]))
med = {k: statistics.median(v) for k, v in qps.items()}
print("== summary (indicative: dnsperf shares the cores)")
for k in ("brokerd", "nsd", "gdnsd", "knot"):
    q = f"median {med[k]:10.0f} q/s" if k in med else " " * 21
    print(f"  {k:8s} {q}   CPU@rate {cpu.get(k, 0):5.1f}%   RSS {rss.get(k, 0) / 1024:6.1f} MB")
b = med.get("brokerd", 0)
for k in ("nsd", "gdnsd"):
    if med.get(k):
        print(f"  brokerd/{k} qps ratio {b / med[k]:.2f}")
for k in ("nsd", "gdnsd", "knot"):
    if cpu.get(k):
        print(f"  brokerd/{k} CPU ratio at fixed rate {cpu.get('brokerd', 0) / cpu[k]:.2f}")
print("== DNSSEC summary (DO=1)")
s, u, o = (med.get(k, 0) for k in ("do-brokerd-signed", "do-brokerd", "do-knot-onlinesign"))
cs, cu = cpu.get("do-brokerd-signed", 0), cpu.get("do-brokerd", 0)
if u and o:
    print(f"  signed/unsigned qps {s / u:.2f} (goal >= 0.9)   signed/knot-onlinesign qps "
          f"{s / o:.2f} (goal >= 1.0)")
if cu:
    print(f"  signed/unsigned CPU at fixed rate {cs / cu:.2f} (goal <= 1.2)")
fs, fo = cpu.get("flood-brokerd-signed", 0), cpu.get("flood-knot-onlinesign", 0)
print(f"  NXDOMAIN flood CPU: brokerd-signed {fs:.1f}%  knot-onlinesign {fo:.1f}%"
      " (brokerd signs nothing per query: a precomputed NSEC chain)")
EOF
