#!/bin/sh
# run-tests.sh - the whole suite behind `make test`:
#   build, C unit tests, the same under ASan+UBSan, every committed fuzz
#   corpus replayed once through its libFuzzer target (clang, ASan+UBSan),
#   pytest integration tests
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

# Add the counts a stage printed in its "... N passed, N failed" line.
count() {
	line=$(grep -E '[0-9]+ passed' "$log" | tail -n 1)
	p=$(printf '%s' "$line" | sed -nE 's/^(.*[^0-9])?([0-9]+) passed.*/\2/p')
	f=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p')
	e=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) errors?.*/\1/p')
	passed=$((passed + ${p:-0}))
	failed=$((failed + ${f:-0} + ${e:-0}))
}

stage() {
	name=$1
	shift
	echo "==> $name"
	"$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	count
	if [ "$rc" -ne 0 ] && ! grep -qE '[0-9]+ failed' "$log"; then
		# A stage that failed without reporting counts (build error, crash).
		echo "==> $name: exit status $rc"
		failed=$((failed + 1))
	fi
}

stage "style (clang-format)" $MAKE --no-print-directory style-check
stage "build" $MAKE --no-print-directory all unit-bins
stage "unit tests" tests/tools/run-unit.sh build/tests
stage "unit tests under ASan+UBSan" $MAKE --no-print-directory check-asan-unit
stage "fuzz corpora under ASan+UBSan" $MAKE --no-print-directory fuzz-replay
stage "integration tests" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
stage "fault lab" tests/lab/run.sh
stage "integration tests under ASan+UBSan" $MAKE --no-print-directory check-asan-integration

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
