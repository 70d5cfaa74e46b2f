#!/bin/sh
# run-unit.sh DIR - run every unit test binary in DIR (TAP), print a count line.
# Prints "unit: N passed, N failed" last; exits 1 if any check or binary failed.
set -u
dir=${1:?usage: run-unit.sh DIR}
passed=0
failed=0
status=0
for t in "$dir"/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1)
	rc=$?
	p=$(printf '%s\n' "$out" | grep -c '^ok ')
	f=$(printf '%s\n' "$out" | grep -c '^not ok ')
	plan=$(printf '%s\n' "$out" | grep -c '^1\.\.')
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ] || [ "$plan" -ne 1 ]; then
		printf '%s\n' "$out" | grep -v '^ok ' | sed "s|^|$(basename "$t"): |"
		echo "$(basename "$t"): FAILED (exit $rc)"
		[ "$f" -eq 0 ] && f=1
		status=1
	else
		echo "$(basename "$t"): $p checks ok"
	fi
	passed=$((passed + p))
	failed=$((failed + f))
done
echo "unit: $passed passed, $failed failed"
exit $status
