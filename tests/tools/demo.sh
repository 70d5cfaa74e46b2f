#!/bin/sh
# demo.sh - run the whole appliance on loopback:
#   brokerd on 127.0.0.1:5353, authoritative for mail.example.test, answering
#   the cluster smtp.mail.example.test; three members 127.0.0.11-13, each with
#   metricd (UDP 4331, HTTP 8431) and smtp-relayd (SMTP 2525, HTTP 8025).
# Configurations come from docs/examples/demo/.  Ctrl-C stops everything.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/build/bin"
examples="$top/docs/examples/demo"
dir=$(mktemp -d /tmp/mxbroker-demo.XXXXXX)
# The daemons refuse root without options { user }; the demo is a sandbox on
# loopback, so it lets them keep root (docs/hardening.md).
[ "$(id -u)" != 0 ] || export MXB_ALLOW_ROOT=1
pids=""

cleanup() {
	trap - EXIT INT TERM
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "demo: stopped; logs and mail were in $dir (removed)"
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

start() {	# start NAME LOG PROGRAM ARGS...
	name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	pids="$pids $!"
	echo "demo: started $name (pid $!, log $log)"
}

mkdir -p "$dir/broker"
sed "s|@DIR@|$dir|g" "$examples/broker.conf" >"$dir/broker.conf"
cp "$examples/mail.example.test.zone" "$dir/broker/"
"$bin/brokerd" -t -c "$dir/broker.conf" >/dev/null
for n in 1 2 3; do
	mkdir -p "$dir/member$n"
	cpu=$((n * 30))
	sed -e "s|@DIR@|$dir|g" -e "s|@N@|$n|g" -e "s|@CPU@|$cpu|g" \
	    "$examples/member.conf" >"$dir/member$n.conf"
	"$bin/smtp-relayd" -t -c "$dir/member$n.conf" >/dev/null
	start "smtp-relayd 127.0.0.1$n" "$dir/member$n/smtp-relayd.log" \
	    "$bin/smtp-relayd" -c "$dir/member$n.conf"
	start "metricd 127.0.0.1$n" "$dir/member$n/metricd.log" \
	    "$bin/metricd" -c "$dir/member$n.conf"
done
start "brokerd 127.0.0.1:5353" "$dir/broker/brokerd.log" "$bin/brokerd" -c "$dir/broker.conf"

# Wait (bounded) until the broker answers DNS.
i=0
until dig +short +time=1 +tries=1 @127.0.0.1 -p 5353 mail.example.test SOA >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "demo: brokerd did not answer; see $dir/broker/brokerd.log"; exit 1; }
	sleep 0.2
done

cat <<MSG

mxbroker demo is up (files in $dir). Try, in another terminal:

  dig @127.0.0.1 -p 5353 smtp.mail.example.test A     # least-loaded members, rotating
  dig @127.0.0.1 -p 5353 mail.example.test MX
  $bin/metricview 127.0.0.11 127.0.0.12 127.0.0.13 --key-file $dir/broker.conf
  swaks --server 127.0.0.11:2525 --to user@mail.example.test --from you@example.test
  find $dir/member1/mail -type f                     # the delivered message
  $bin/smtp-relayctl -c $dir/member1.conf list
  curl -s http://127.0.0.1:8053/status                # broker state (JSON)
  curl -s http://127.0.0.11:8431/metrics              # a member's rating (Prometheus)

Press Ctrl-C to stop everything.
MSG
wait
