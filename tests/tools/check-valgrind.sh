#!/bin/sh
# check-valgrind.sh [PYTEST ARGS...] - run the daemons' integration tests with
# every program under valgrind (memcheck, definite leaks at exit are errors).
#
# The programs of $MXB_BIN (default build/bin) are wrapped by scripts in
# build/valgrind/bin (tests/integration/valgrind_util.py); pytest runs with
# MXB_BIN pointing there and MXB_VALGRIND=1.  Each process writes
# build/valgrind/logs/<prog>.<pid>.log; afterwards every log is scanned.
# Exit status: non-zero when a test failed or any log shows an error.
# Default test selection: tests/integration.
set -u
cd "$(dirname "$0")/../.." || exit 1
real=${MXB_BIN:-build/bin}
out=build/valgrind
command -v valgrind >/dev/null 2>&1 || { echo "valgrind is not installed: run 'make deps'" >&2; exit 1; }
rm -rf "$out"
/usr/bin/python3 tests/integration/valgrind_util.py wrap "$real" "$out/bin" "$out/logs" || exit 1
[ $# -gt 0 ] || set -- tests/integration
MXB_VALGRIND=1 MXB_BIN=$(pwd)/$out/bin /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@"
tests=$?
/usr/bin/python3 tests/integration/valgrind_util.py scan "$out/logs"
logs=$?
[ $tests -eq 0 ] && [ $logs -eq 0 ]
