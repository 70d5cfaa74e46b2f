"""test_hardening - the programs are built hardened (Makefile HARDEN_CFLAGS,
HARDEN_LDFLAGS; docs/hardening.md): position-independent executables,
relocations resolved at start and then read-only (full RELRO), stack
canaries and fortified libc calls.  Read from the ELF files with readelf,
as hardening-check does."""
import re
import shlex
import subprocess

import pytest

import mxb
from conftest import require_tool

PROGRAMS = ["brokerd", "brokerd-ctl", "metricd", "metricview", "mxroute", "smtp-relayd",
            "smtp-relayctl"]
DAEMONS = ["brokerd", "metricd", "mxroute", "smtp-relayd"]


def elf(name):
    """The ELF file of a program; under check-valgrind MXB_BIN holds wrapper
    scripts that exec the real program (valgrind_util.py)."""
    path = mxb.binary(name)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"\x7fELF":
        return path
    with open(path) as f:
        for line in f:
            if line.startswith("exec "):
                argv = shlex.split(line)
                return argv[argv.index("$@") - 1]
    raise AssertionError(f"{path}: neither an ELF file nor a wrapper that execs one")


def readelf(*args):
    r = subprocess.run([require_tool("readelf"), "-W", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("name", PROGRAMS)
def test_pie(name):
    path = elf(name)
    assert re.search(r"Type:\s+DYN", readelf("-h", path)), f"{name} is not PIE"
    assert re.search(r"FLAGS_1\).*\bPIE\b", readelf("-d", path)), f"{name}: no DF_1_PIE"


@pytest.mark.parametrize("name", PROGRAMS)
def test_full_relro(name):
    path = elf(name)
    assert "GNU_RELRO" in readelf("-l", path), f"{name}: no RELRO segment"
    dyn = readelf("-d", path)
    assert re.search(r"\(FLAGS\).*\bBIND_NOW\b", dyn) or \
        re.search(r"\(FLAGS_1\).*\bNOW\b", dyn), f"{name}: not linked with -z now"


@pytest.mark.parametrize("name", DAEMONS)
def test_stack_protector_and_fortify(name):
    syms = set(re.findall(r"\b(__\w+_chk\w*)", readelf("--dyn-syms", elf(name))))
    assert "__stack_chk_fail" in syms, f"{name}: no stack protector"
    fortified = sorted(s for s in syms if s != "__stack_chk_fail")
    assert fortified, f"{name}: no fortified libc calls (__*_chk)"
