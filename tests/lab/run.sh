#!/bin/sh
# run.sh - the mxbroker fault lab (docs/testing.md, "Fault lab").
#
#   tests/lab/run.sh [-k PATTERN]... [--list] [--keep] [--impairment auto|netem|wire]
#
# Builds the appliance in network namespaces, injects each fault, prints the
# matrix and "N passed, M failed"; exits non-zero on any failure.  Needs root.
# Programs come from $MXB_BIN (default build/bin).  Whatever happens to the
# Python program, this script deletes every namespace and unmounts every
# mount of the run (the program cleans up itself first).
set -u
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
	echo "lab: needs root (network namespaces, tmpfs mounts)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
MXB_LAB_PREFIX="mxl$$"
export MXB_LAB_PREFIX
export PYTHONDONTWRITEBYTECODE=1
export MXB_BIN="${MXB_BIN:-$PWD/build/bin}"

sweep() {
	# Mounts first (deepest last in /proc/mounts order), then namespaces.
	grep " /tmp/$MXB_LAB_PREFIX/" /proc/mounts | awk '{print $2}' | sort -r |
		while read -r m; do umount -l "$m"; done
	for ns in $(ip netns list | awk '{print $1}' | grep "^$MXB_LAB_PREFIX-"); do
		for pid in $(ip netns pids "$ns"); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns"
	done
}

child=""
trap '[ -n "$child" ] && kill -TERM "$child" 2>/dev/null' INT TERM HUP
/usr/bin/python3 -u tests/lab/lab.py "$@" &
child=$!
wait "$child"
rc=$?
while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
sweep
exit "$rc"
