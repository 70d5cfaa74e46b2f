"""valgrind_util - run the integration tests' programs under valgrind.

`make check-valgrind` (tests/tools/check-valgrind.sh) builds a folder of
wrapper scripts, one per program of build/bin, each of which execs

    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --log-file=<logs>/<prog>.%p.log <real program> "$@"

and points MXB_BIN at that folder, so the unchanged fixture (mxb.py) starts
every daemon under valgrind.  Afterwards every log is scanned: any error
(invalid read/write, uninitialised value, definite leak at exit) fails the
run.  The process keeps its pid through the exec, so tests that look at
/proc/PID still see the daemon.

    python3 valgrind_util.py wrap REAL_BIN WRAP_DIR LOG_DIR
    python3 valgrind_util.py scan LOG_DIR
"""
import os
import re
import shlex
import stat
import sys

VALGRIND = "/usr/bin/valgrind"
OPTIONS = [
    "--error-exitcode=99",
    "--leak-check=full",
    "--errors-for-leak-kinds=definite",
    "--show-leak-kinds=definite",
    "--track-origins=yes",
    "--num-callers=30",
    "--child-silent-after-fork=yes",
]


def active():
    """True when the tests run under check-valgrind (MXB_VALGRIND=1)."""
    return os.environ.get("MXB_VALGRIND") == "1"


def slow(seconds):
    """A timeout stretched for valgrind (about 10x slower) when active."""
    return seconds * 5 if active() else seconds


def make_wrappers(real_bin, wrap_dir, log_dir):
    """One executable script per program in real_bin; returns their names."""
    os.makedirs(wrap_dir, exist_ok=True)
    os.makedirs(log_dir, exist_ok=True)
    names = []
    for name in sorted(os.listdir(real_bin)):
        real = os.path.abspath(os.path.join(real_bin, name))
        if not (os.path.isfile(real) and os.access(real, os.X_OK)):
            continue
        log = os.path.join(os.path.abspath(log_dir), f"{name}.%p.log")
        argv = [VALGRIND, *OPTIONS, f"--log-file={log}", real]
        path = os.path.join(wrap_dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n# check-valgrind wrapper (tests/integration/valgrind_util.py)\n"
                    f'exec {" ".join(shlex.quote(a) for a in argv)} "$@"\n')
        os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH |
                 stat.S_IXOTH)
        names.append(name)
    return names


_SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors")
_LOST = re.compile(r"definitely lost: ([\d,]+) bytes")


def scan_log(path):
    """A list of problems found in one valgrind log ([] when clean)."""
    with open(path, errors="replace") as f:
        text = f.read()
    problems = []
    m = _SUMMARY.search(text)
    if m is None:
        # No summary: killed with SIGKILL (crash tests do that on purpose, the
        # fixture after a stop timeout): nothing to judge; counted by unchecked().
        return problems
    if int(m.group(1)) != 0:
        problems.append(f"{m.group(1)} errors")
    m = _LOST.search(text)
    if m is not None and m.group(1) != "0":
        problems.append(f"definitely lost {m.group(1)} bytes")
    return problems


def unchecked(log_dir):
    """Logs without an ERROR SUMMARY: processes that never reached exit."""
    out = []
    for name in sorted(os.listdir(log_dir)):
        if name.endswith(".log"):
            with open(os.path.join(log_dir, name), errors="replace") as f:
                if _SUMMARY.search(f.read()) is None:
                    out.append(name)
    return out


def scan(log_dir):
    """{log file: [problems]} for every log with a problem."""
    bad = {}
    for name in sorted(os.listdir(log_dir)):
        if name.endswith(".log"):
            p = scan_log(os.path.join(log_dir, name))
            if p:
                bad[name] = p
    return bad


def main(argv):
    if len(argv) == 5 and argv[1] == "wrap":
        names = make_wrappers(argv[2], argv[3], argv[4])
        if not names:
            print(f"valgrind_util: no programs in {argv[2]}", file=sys.stderr)
            return 1
        print(f"valgrind wrappers for: {' '.join(names)}")
        return 0
    if len(argv) == 3 and argv[1] == "scan":
        logs = [n for n in os.listdir(argv[2]) if n.endswith(".log")]
        bad = scan(argv[2])
        for name, problems in bad.items():
            print(f"valgrind: {name}: {'; '.join(problems)}")
            with open(os.path.join(argv[2], name), errors="replace") as f:
                sys.stdout.write("".join(f.readlines()[:80]))
        killed = unchecked(argv[2])
        if killed:
            print(f"valgrind: not checked (killed before exit): {' '.join(killed)}")
        print(f"valgrind: {len(logs)} process logs, {len(bad)} with problems, "
              f"{len(killed)} killed before exit")
        return 1 if bad else 0
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
