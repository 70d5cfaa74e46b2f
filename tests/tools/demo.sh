#!/bin/sh
# shellcheck disable=SC2317  # cleanup and force_stop run from traps
# demo.sh - run the whole appliance on loopback and relay one message through it:
#   brokerd on 127.0.0.1:5353, authoritative for example.test and
#   mail.example.test, answering the cluster smtp.mail.example.test; three
#   members 127.0.0.11-13, each with metricd (UDP 4331, HTTP 8431) and
#   smtp-relayd (SMTP 2525, HTTP 8025); and the final destination
#   mx.example.test, a fourth smtp-relayd on 127.0.0.14:2525 that delivers
#   example.test into Maildirs.
# The demo sends user@example.test to the cluster's first answer with swaks
# and shows where the message landed.  Configurations come from
# docs/examples/demo/.
#
# usage: demo.sh [--once] [--dir DIR]
#   --once     run the story, print it, stop everything and exit (0 = the
#              message arrived); without it the appliance keeps running
#              until Ctrl-C
#   --dir DIR  keep the files (configurations, logs, queues, Maildirs) in
#              DIR instead of a new /tmp/mxbroker-demo.XXXXXX
# Programs come from $MXB_BIN, else $BUILD/bin (make demo BUILD=...), else
# build/bin.  Logs and Maildirs are kept when the demo stops; a second Ctrl-C
# while it stops kills what is left.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
case ${BUILD:-build} in
/*) bin=${MXB_BIN:-$BUILD/bin} ;;
*) bin=${MXB_BIN:-$top/${BUILD:-build}/bin} ;;
esac
examples="$top/docs/examples/demo"
once=false
dir=""
pids=""
watchdog=""

usage() {
	echo "usage: demo.sh [--once] [--dir DIR]"
}

# ask NAME TYPE: the broker's answer, one record a line.
ask() {
	dig +short +time=1 +tries=1 -p 5353 @127.0.0.1 "$@"
}

while [ $# -gt 0 ]; do
	case $1 in
	--once) once=true ;;
	--dir)
		[ $# -ge 2 ] || { usage >&2; exit 64; }
		dir=$2
		shift
		;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 64 ;;
	esac
	shift
done

for tool in dig swaks; do
	command -v "$tool" >/dev/null || {
		echo "demo: $tool not found (make deps installs it)" >&2
		exit 1
	}
done
for prog in brokerd metricd smtp-relayd smtp-relayctl; do
	[ -x "$bin/$prog" ] || { echo "demo: $bin/$prog not built (make all)" >&2; exit 1; }
done
if [ -n "$dir" ]; then
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -z "$(ls -A "$dir")" ] || { echo "demo: $dir is not empty" >&2; exit 1; }
else
	dir=$(mktemp -d /tmp/mxbroker-demo.XXXXXX)
fi
# The daemons refuse root without options { user }; the demo is a sandbox on
# loopback, so it lets them keep root (docs/hardening.md).
[ "$(id -u)" != 0 ] || export MXB_ALLOW_ROOT=1

# Kill whatever is left; the second Ctrl-C and the stop timer end here.
force_stop() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
}

# Stop every daemon (SIGTERM, then SIGKILL after 10 s or on a second
# Ctrl-C), reap them, and say where the files are.  Runs on every exit.
cleanup() {
	status=$?
	trap - EXIT
	trap force_stop INT TERM
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	(sleep 10; for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done) &
	watchdog=$!
	for p in $pids; do
		while ! wait "$p" 2>/dev/null && kill -0 "$p" 2>/dev/null; do :; done
	done
	kill "$watchdog" 2>/dev/null || true
	wait "$watchdog" 2>/dev/null || true
	echo "demo: stopped every daemon; logs and Maildirs are kept in $dir:"
	find "$dir" -name '*.log' | sort | sed 's/^/  /'
	[ ! -d "$dir/destination/mail" ] || echo "  $dir/destination/mail (Maildirs)"
	exit "$status"
}
trap cleanup EXIT
trap 'trap force_stop INT TERM; exit 130' INT
trap 'trap force_stop INT TERM; exit 143' TERM

start() {	# start NAME LOG PROGRAM ARGS...
	name=$1 log=$2
	shift 2
	"$@" >"$log" 2>&1 &
	pids="$pids $!"
	echo "demo: started $name (pid $!, log $log)"
}

# wait_for WHAT COMMAND...: retry COMMAND (quietly) for up to 30 s.
wait_for() {
	what=$1
	shift
	i=0
	until "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 150 ] || { echo "demo: $what did not come up; see the logs" >&2; exit 1; }
		sleep 0.2
	done
}

# fill TEMPLATE OUTPUT [N DAEMON]: a configuration with @DIR@ etc. filled in.
fill() {
	n=${3:-0}
	sed -e "s|@DIR@|$dir|g" -e "s|@N@|$n|g" -e "s|@CPU@|$((n * 30))|g" \
	    -e "s|@DAEMON@|${4:-}|g" "$examples/$1" >"$2"
}

setup() {
	mkdir -p "$dir/broker" "$dir/destination"
	fill broker.conf "$dir/broker/brokerd.conf"
	cp "$examples/mail.example.test.zone" "$examples/example.test.zone" "$dir/broker/"
	"$bin/brokerd" -t -c "$dir/broker/brokerd.conf" >/dev/null
	fill destination.conf "$dir/destination/smtp-relayd.conf"
	"$bin/smtp-relayd" -t -c "$dir/destination/smtp-relayd.conf" >/dev/null
	for n in 1 2 3; do
		mkdir -p "$dir/member$n"
		for d in smtp-relayd metricd; do
			fill member.conf "$dir/member$n/$d.conf" "$n" "$d"
			"$bin/$d" -t -c "$dir/member$n/$d.conf" >/dev/null
		done
	done
}

start_all() {
	start "smtp-relayd mx.example.test 127.0.0.14" "$dir/destination/smtp-relayd.log" \
	    "$bin/smtp-relayd" -c "$dir/destination/smtp-relayd.conf"
	for n in 1 2 3; do
		for d in smtp-relayd metricd; do
			start "$d 127.0.0.1$n" "$dir/member$n/$d.log" \
			    "$bin/$d" -c "$dir/member$n/$d.conf"
		done
	done
	start "brokerd 127.0.0.1:5353" "$dir/broker/brokerd.log" \
	    "$bin/brokerd" -c "$dir/broker/brokerd.conf"
	wait_for "brokerd" ask example.test SOA
	wait_for "smtp-relayd 127.0.0.14" "$bin/smtp-relayctl" \
	    -c "$dir/destination/smtp-relayd.conf" list
	for n in 1 2 3; do
		wait_for "smtp-relayd 127.0.0.1$n" "$bin/smtp-relayctl" \
		    -c "$dir/member$n/smtp-relayd.conf" list
	done
}

# True once the cluster answers with a member rather than the failover.
cluster_up() {
	case $(ask smtp.mail.example.test A | head -n 1) in
	127.0.0.1[123]) return 0 ;;
	*) return 1 ;;
	esac
}

# True once a message sits in user's Maildir at the destination.
delivered() {
	[ -n "$(find "$dir/destination/mail/user/new" -type f 2>/dev/null)" ]
}

# Send one message through the cluster and show where it landed.
story() {
	wait_for "the cluster (members rated by metricd)" cluster_up
	echo
	echo "== dig -p 5353 @127.0.0.1 smtp.mail.example.test A   (least-loaded members first)"
	ask smtp.mail.example.test A
	echo "== dig -p 5353 @127.0.0.1 example.test MX            (where example.test mail goes)"
	ask example.test MX
	first=$(ask smtp.mail.example.test A | head -n 1)
	echo
	echo "== swaks to the first answer, $first:2525"
	swaks --server "$first:2525" --from demo@mail.example.test --to user@example.test \
	    --helo client.example.test --header "Subject: mxbroker demo" \
	    --body "Relayed by $first to mx.example.test." --suppress-data
	wait_for "delivery to mx.example.test" delivered
	msg=$(find "$dir/destination/mail/user/new" -type f | head -n 1)
	echo
	echo "== the message landed at mx.example.test (127.0.0.14):"
	echo "   $msg"
	sed '/^$/q' "$msg" | sed 's/^/   | /'
	echo "== what the relays logged:"
	for log in "$dir"/member*/smtp-relayd.log "$dir/destination/smtp-relayd.log"; do
		grep -h -i -e 'user@example.test' -e 'delivered' -e 'sent' "$log" |
		    sed "s|^|   ${log#"$dir"/}: |" || true
	done
}

setup
start_all
story
if $once; then
	echo
	echo "demo: the message went client -> $first -> mx.example.test -> Maildir"
	exit 0
fi
cat <<MSG

mxbroker demo is up (files in $dir). Try, in another terminal:

  dig @127.0.0.1 -p 5353 smtp.mail.example.test A     # least-loaded members, rotating
  dig @127.0.0.1 -p 5353 example.test MX
  $bin/metricview 127.0.0.11 127.0.0.12 127.0.0.13 --key-file $dir/broker/brokerd.conf
  swaks --server $first:2525 --to user@example.test --from you@mail.example.test
  find $dir/destination/mail -type f               # delivered messages
  $bin/smtp-relayctl -c $dir/member1/smtp-relayd.conf list
  $bin/mxroute -c $dir/member1/smtp-relayd.conf --explain user@example.test
  curl -s http://127.0.0.1:8053/status                # broker state (JSON)
  curl -s http://127.0.0.11:8431/metrics              # a member's rating (Prometheus)

Pid files: $dir/broker/brokerd.pid, $dir/member*/{smtp-relayd,metricd}.pid,
$dir/destination/smtp-relayd.pid.
Press Ctrl-C to stop everything (logs and Maildirs are kept).
MSG
# Ctrl-C interrupts the wait and the traps take it from there; wait
# returning by itself means every daemon died.
wait || true
echo "demo: every daemon exited; see the logs" >&2
exit 1
