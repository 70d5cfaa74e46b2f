#!/bin/sh
# demo.sh - run the appliance on loopback with the example configuration.
# Until every component has landed, this starts the daemons that exist and
# shows their status endpoints.  Ctrl-C stops everything.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin="$top/build/bin"
dir=$(mktemp -d /tmp/mxbroker-demo.XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
	echo "demo: stopped"
}
trap cleanup EXIT INT TERM

cat > "$dir/mxbroker.conf" <<CONF
options { directory "$dir"; };
broker { listen { 127.0.0.1 port 5353; }; status-listen 127.0.0.1 port 8053; };
metrics { listen 127.0.0.11 port 4331; http-listen 127.0.0.11 port 8431; };
relay { listen { 127.0.0.11 port 2525; }; hostname "relay1.mail.example.test";
        status-listen 127.0.0.11 port 8025; };
CONF
for p in brokerd metricd smtp-relayd; do
	"$bin/$p" -c "$dir/mxbroker.conf" &
	pids="$pids $!"
done
sleep 1
cat <<MSG

mxbroker demo is running (configuration in $dir/mxbroker.conf).  Try:
  curl -s http://127.0.0.1:8053/status      # brokerd
  curl -s http://127.0.0.11:8431/metrics    # metricd
  curl -s http://127.0.0.11:8025/status     # smtp-relayd
Press Ctrl-C to stop.
MSG
wait
