#!/bin/sh
# run-fuzz.sh DIR SECONDS - run every libFuzzer target in DIR for SECONDS each,
# seeded from tests/fuzz/corpus/<name>/ (new inputs go to build/fuzz/corpus/).
# Crashes are written as tests/fuzz/crash-*; exits 1 if any target failed.
set -u
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
