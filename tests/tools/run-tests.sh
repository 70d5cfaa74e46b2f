#!/bin/sh
# run-tests.sh - the whole suite behind `make test`:
#   build, C unit tests, the same under ASan+UBSan, every committed fuzz
#   corpus replayed once through its libFuzzer target (clang, ASan+UBSan),
#   pytest integration tests
#   (tests/tools/run-integration.sh: in parallel, then the serial part)
#   against the normal programs, the fault lab (tests/lab, as root: network
#   namespaces) and the integration tests against ASan+UBSan builds.
# Ends with one line "N passed, N failed" summing every stage.
set -u
cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# The counts a stage printed in its last summary line, in any order:
# "N passed, N failed" (ours), "N failed, N passed, N skipped in 9s" (pytest),
# "N errors".  Sets p, f and e (0 when absent).
count() {
	line=$(grep -E '(^|[^0-9])[0-9]+ (passed|failed|errors?)' "$1" | tail -n 1)
	p=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ passed' | grep -oE '[0-9]+' | tail -n 1)
	f=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ failed' | grep -oE '[0-9]+' | tail -n 1)
	e=$(printf '%s\n' "$line" | grep -oE '(^|[^0-9])[0-9]+ errors?' | grep -oE '[0-9]+' | tail -n 1)
	p=${p:-0} f=${f:-0} e=${e:-0}
}

stage() {
	name=$1
	shift
	echo "==> $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	count "$log"
	passed=$((passed + p))
	failed=$((failed + f + e))
	if [ "$rc" -ne 0 ] && [ $((f + e)) -eq 0 ]; then
		# A stage that failed without counting a failure (build error, crash).
		echo "==> $name: exit status $rc"
		failed=$((failed + 1))
	fi
}

# run-tests.sh --self-check: the counting above, on the summary lines it meets.
if [ "${1:-}" = --self-check ]; then
	for c in "unit: 2229 passed, 0 failed|2229 0 0" \
	    "1 failed, 449 passed, 1 skipped in 709.37s (0:11:49)|449 1 0" \
	    "12 passed, 0 failed|12 0 0" "= 3 passed, 2 errors in 1.0s =|3 0 2" \
	    "== 2 failed in 0.5s ==|0 2 0" \
	    "1 failed, 420 passed, 1 skipped, 28 deselected in 300.12s (0:05:00)|420 1 0"; do
		printf '%s\n' "${c%|*}" >"$log"
		count "$log"
		[ "$p $f $e" = "${c#*|}" ] || { echo "self-check: '${c%|*}' read as $p $f $e"; exit 1; }
	done
	echo "self-check: 6 passed, 0 failed"
	exit 0
fi

stage "the summary's own counting" sh tests/tools/run-tests.sh --self-check
stage "style (clang-format)" $MAKE --no-print-directory style-check
stage "build" $MAKE --no-print-directory all unit-bins
stage "unit tests" tests/tools/run-unit.sh build/tests
stage "unit tests under ASan+UBSan" $MAKE --no-print-directory check-asan-unit
stage "fuzz corpora under ASan+UBSan" $MAKE --no-print-directory fuzz-replay
stage "integration tests" tests/tools/run-integration.sh
stage "fault lab" tests/lab/run.sh
stage "integration tests under ASan+UBSan" $MAKE --no-print-directory check-asan-integration

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
