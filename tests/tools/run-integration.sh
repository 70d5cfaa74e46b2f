#!/bin/sh
# run-integration.sh - the integration tests (tests/integration) the way
# `make test` and `make check-asan-integration` run them, in two passes:
#   1. every test not marked serial, spread over $MXB_TEST_JOBS pytest-xdist
#      workers (default 3; tests/integration/mxb.py gives each worker its own
#      slice of the port range);
#   2. the tests marked serial (@pytest.mark.serial: a timing bound that is a
#      product claim, or fixed ports), one at a time, nothing else running.
# Programs come from $MXB_BIN (default build/bin), as for plain pytest.
# Both passes always run; ends with one line "N passed, N failed" (pytest's
# own summaries stay above it) and exits non-zero if either pass failed.
# MXB_TEST_JOBS=1 runs pass 1 without xdist, as plain `pytest` would.
set -u
cd "$(dirname "$0")/../.." || exit 1
PYTEST="/usr/bin/python3 -m pytest -q -p no:cacheprovider --durations=20"
jobs=${MXB_TEST_JOBS:-3}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [ "$jobs" -gt 1 ] && ! /usr/bin/python3 -c 'import xdist' 2>/dev/null; then
	echo "integration: pytest-xdist is missing (make deps installs python3-pytest-xdist):" \
	    "running pass 1 serially" >&2
	jobs=1
fi
if [ "$jobs" -gt 1 ]; then
	parallel="-n $jobs --dist loadfile"
else
	parallel=""
fi

passed=0
failed=0
status=0
# pass LABEL OK-STATUS PYTEST-ARGS...: one pytest run, its output shown; adds
# the counts of its last summary line ("N failed, N passed, N skipped, N
# errors in 9s") to the totals.  An exit status other than 0 and OK-STATUS
# fails the run, and counts as a failure if no test was counted as failed
# (a collection error, pytest itself crashing).
pass() {
	label=$1 ok=$2
	shift 2
	echo "==> integration, $label"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	line=$(grep -E '(^|[^0-9])[0-9]+ (passed|failed|errors?)' "$log" | tail -n 1)
	p=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ passed' | grep -oE '[0-9]+' | tail -n 1)
	f=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ failed' | grep -oE '[0-9]+' | tail -n 1)
	e=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ errors?' | grep -oE '[0-9]+' | tail -n 1)
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne "$ok" ]; then
		echo "==> integration, $label: pytest exit status $rc"
		status=1
		[ $((${f:-0} + ${e:-0})) -gt 0 ] || failed=$((failed + 1))
	fi
}

# shellcheck disable=SC2086  # $PYTEST and $parallel are word lists
pass "in parallel ($jobs workers)" 0 $PYTEST $parallel -m "not serial" tests/integration
# Exit status 5: no test is marked serial.
# shellcheck disable=SC2086
pass "serial part (one at a time)" 5 $PYTEST -m serial tests/integration

echo "$passed passed, $failed failed"
exit "$status"
