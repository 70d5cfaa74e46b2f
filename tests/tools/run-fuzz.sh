#!/bin/sh
# run-fuzz.sh DIR SECONDS - run every libFuzzer target in DIR for SECONDS each,
# seeded from tests/fuzz/corpus/<name>/ (new inputs go to build/fuzz/corpus/).
# Crashes are written as tests/fuzz/crash-*; exits 1 if any target failed.
#
# run-fuzz.sh --replay DIR - run every target once over its committed corpus
# (-runs=0: each input executed, no mutation), for `make test`.  One line per
# target, then "N passed, M failed" counting targets; a target
# (tests/fuzz/fuzz_<name>.c) without a binary in DIR or without a corpus fails.
set -u

replay() {
	dir=$1
	passed=0
	failed=0
	mkdir -p build/fuzz
	for src in tests/fuzz/fuzz_*.c; do
		name=${src#tests/fuzz/fuzz_}
		name=${name%.c}
		t=$dir/fuzz_$name
		seeds=tests/fuzz/corpus/$name
		log=build/fuzz/$name.replay.log
		n=$(find "$seeds" -type f 2>/dev/null | wc -l)
		# -runs=0 with a corpus directory runs every file in it once;
		# -artifact_prefix keeps a failing input out of the tree.
		if [ "$n" -gt 0 ] && [ -x "$t" ] && "$t" -runs=0 -artifact_prefix=build/fuzz/ "$seeds" \
		    >"$log" 2>&1; then
			echo "fuzz $name: $n inputs ok"
			passed=$((passed + 1))
		else
			tail -n 40 "$log" 2>/dev/null
			echo "fuzz $name: FAILED ($n inputs, see $log)"
			failed=$((failed + 1))
		fi
	done
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}

if [ "${1:-}" = --replay ]; then
	replay "${2:?usage: run-fuzz.sh --replay DIR}"
	exit
fi

dir=${1:?usage: run-fuzz.sh DIR SECONDS}
secs=${2:-30}
status=0
for t in "$dir"/fuzz_*; do
	[ -x "$t" ] || continue
	name=${t##*/fuzz_}
	seeds=tests/fuzz/corpus/$name
	work=build/fuzz/corpus/$name
	mkdir -p "$work" "$seeds"
	echo "==> fuzz $name for ${secs}s"
	if ! "$t" -max_total_time="$secs" -print_final_stats=1 \
	    -artifact_prefix=tests/fuzz/ "$work" "$seeds" 2>"build/fuzz/$name.log"; then
		tail -n 40 "build/fuzz/$name.log"
		echo "==> fuzz $name: FAILED (see build/fuzz/$name.log)"
		status=1
		continue
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "build/fuzz/$name.log"
done
exit $status
