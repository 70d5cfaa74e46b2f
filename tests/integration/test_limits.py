"""Resource limits of smtp-relayd (docs/hardening.md): a thousand idle SMTP
connections do not keep a new client from being served, and running out of
descriptors pauses accept() instead of spinning."""
import os
import resource
import socket
import subprocess
import threading
import time

import pytest

import mxb
import valgrind_util
from conftest import require_tool

IDLE = 1000
SOURCES = [f"127.0.0.{i}" for i in range(2, 22)]     # 20 clients x 50 connections


def env():
    """Root in CI: the fixture's escape hatch, set here too so the test does
    not depend on it (test_privileges.py covers the drop)."""
    e = dict(os.environ)
    e["MXB_ALLOW_ROOT"] = "1"
    return e


def relay_conf(daemons, port, http, extra=""):
    dns = mxb.free_port()       # nobody answers: delivery defers, nothing leaves
    return daemons.write("smtp-relayd.conf",
                         f'options {{ directory "{daemons.dir}"; }};\n'
                         f"resolver {{ nameservers {{ 127.0.0.1 port {dns}; }}; "
                         f"timeout 1s; attempts 1; }};\n"
                         f"relay {{ listen {{ 127.0.0.1 port {port}; }};\n"
                         f'  hostname "relay.test"; relay-domains {{ "example.test"; }};\n'
                         f"  status-listen 127.0.0.1 port {http};\n{extra}}};\n")


def open_sessions(http):
    """sessions.open from /status, or None while it cannot be read."""
    try:
        return mxb.http_json("127.0.0.1", http)["sessions"]["open"]
    except (OSError, AssertionError, ValueError):
        return None


def swaks(port, timeout=10):
    exe = require_tool("swaks")
    return subprocess.run([exe, "--server", f"127.0.0.1:{port}", "--timeout", str(timeout),
                           "--from", "a@client.test", "--to", "b@example.test"],
                          capture_output=True, text=True, timeout=120)


def connect_many(port, n, sources):
    socks = []
    try:
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((sources[i % len(sources)], 0))
            s.settimeout(10)
            s.connect(("127.0.0.1", port))
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def cpu_seconds(pid):
    """User + system CPU time of a process from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_own_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        assert hard == resource.RLIM_INFINITY or hard >= want, \
            f"the test needs {want} descriptors, the hard limit is {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def test_thousand_idle_connections_and_swaks_still_served(daemons):
    raise_own_nofile(IDLE + 200)
    port, http = mxb.free_port(), mxb.free_port()
    # The idle clients are not trusted: the per-client limit applies to them
    # (trusted networks are exempt, as in Postfix).
    conf = relay_conf(daemons, port, http,
                      "  max-sessions 1100; max-sessions-per-client 50;\n"
                      "  trusted-networks { 127.0.0.1; };\n")
    d = daemons.start("smtp-relayd", [mxb.binary("smtp-relayd"), "-c", conf], env=env(),
                      ready=mxb.http_ok("127.0.0.1", http),
                      timeout=valgrind_util.slow(10))
    socks = connect_many(port, IDLE, SOURCES)
    try:
        mxb.wait_until(lambda: open_sessions(http) == IDLE, valgrind_util.slow(30),
                       f"{IDLE} open sessions", d.proc)
        # They are real sessions: each got its banner and says nothing more.
        for s in socks[::100]:
            assert s.recv(512).startswith(b"220 relay.test ESMTP"), "no banner"
        t0 = time.monotonic()
        r = swaks(port)
        assert r.returncode == 0 and "250 2.0.0 Ok: queued as" in r.stdout, \
            r.stdout + r.stderr
        assert time.monotonic() - t0 < valgrind_util.slow(10)
        st = mxb.http_json("127.0.0.1", http)
        assert st["sessions"]["open"] == IDLE                 # the idle ones are still there
        assert st["counters"]["connections_refused"] == 0
        assert st["counters"]["messages_queued"] == 1
        # The 51st connection from one address is refused, not queued forever.
        extra = connect_many(port, 1, SOURCES[:1])[0]
        try:
            extra.settimeout(10)
            assert extra.recv(512).startswith(b"421 4.7.0"), "per-client limit"
        finally:
            extra.close()
    finally:
        for s in socks:
            s.close()
    mxb.wait_until(lambda: open_sessions(http) == 0, valgrind_util.slow(30),
                   "idle sessions to end after the clients left", d.proc)
    assert d.stop() == 0


def test_out_of_descriptors_pauses_accept(daemons):
    """Under a 64-descriptor limit, 100 connections exhaust the daemon's
    table: accept() fails with EMFILE, the listener pauses (little CPU, no
    busy loop) and serves again once descriptors are free."""
    prlimit = require_tool("prlimit")
    port, http = mxb.free_port(), mxb.free_port()
    conf = relay_conf(daemons, port, http,
                      "  max-sessions 1000; max-sessions-per-client 1000;\n")
    d = daemons.start("smtp-relayd", [prlimit, "--nofile=64:64", mxb.binary("smtp-relayd"),
                                      "-c", conf], env=env(),
                      ready=mxb.http_ok("127.0.0.1", http),
                      timeout=valgrind_util.slow(10))
    socks = connect_many(port, 100, ["127.0.0.1"])
    try:
        mxb.wait_until(lambda: "Too many open files" in d.log(), valgrind_util.slow(10),
                       "accept to fail with EMFILE", d.proc)
        before = cpu_seconds(d.pid)
        time.sleep(3)       # a measurement window, not a wait for readiness
        used = cpu_seconds(d.pid) - before
        assert used < 0.5 * (3 if valgrind_util.active() else 1), \
            f"{used:.2f}s of CPU in 3s while out of descriptors: accept spins"
        assert d.proc.poll() is None, "the daemon died out of descriptors"
    finally:
        for s in socks:
            s.close()
    # Descriptors come back as the sessions see EOF: a new client is served.
    mxb.wait_until(lambda: open_sessions(http) == 0, valgrind_util.slow(30),
                   "sessions to end after the clients left", d.proc)
    r = swaks(port)
    assert r.returncode == 0 and "queued as" in r.stdout, r.stdout + r.stderr
    assert d.stop() == 0


def test_status_listener_pauses_out_of_descriptors(daemons):
    """The same for the status endpoint: a GET pending while the daemon is
    out of descriptors must not turn into a busy accept loop."""
    if valgrind_util.active():
        pytest.skip("a CPU measurement: meaningless under valgrind")
    prlimit = require_tool("prlimit")
    port, http = mxb.free_port(), mxb.free_port()
    conf = relay_conf(daemons, port, http,
                      "  max-sessions 1000; max-sessions-per-client 1000;\n")
    d = daemons.start("smtp-relayd", [prlimit, "--nofile=64:64", mxb.binary("smtp-relayd"),
                                      "-c", conf], env=env(),
                      ready=mxb.http_ok("127.0.0.1", http),
                      timeout=valgrind_util.slow(10))
    socks = connect_many(port, 100, ["127.0.0.1"])
    try:
        mxb.wait_until(lambda: "Too many open files" in d.log(), valgrind_util.slow(10),
                       "accept to fail with EMFILE", d.proc)
        socks.append(socket.create_connection(("127.0.0.1", http), timeout=10))
        before = cpu_seconds(d.pid)
        time.sleep(1)       # a measurement window, not a wait for readiness
        used = cpu_seconds(d.pid) - before
        assert used < 0.2 * (3 if valgrind_util.active() else 1), \
            f"{used:.2f}s of CPU in 1s with a status request pending: accept spins"
    finally:
        for s in socks:
            s.close()
    mxb.wait_until(lambda: open_sessions(http) == 0, valgrind_util.slow(30),
                   "sessions to end after the clients left", d.proc)
    assert d.stop() == 0


def netstring(text):
    return b"%d:%s," % (len(text), text.encode())


def read_netstrings(sock, n, timeout):
    """Read n netstring replies; returns their payloads."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        colon = buf.find(b":")
        if colon > 0 and len(buf) >= colon + 1 + int(buf[:colon]) + 1:
            size = int(buf[:colon])
            out.append(buf[colon + 1:colon + 1 + size].decode())
            buf = buf[colon + 1 + size + 1:]
            continue
        data = sock.recv(65536)
        assert data, f"connection closed after {len(out)} replies"
        buf += data
    return out


def test_socketmap_pipelined_flood_while_a_lookup_waits(daemons):
    """Regression: mxroute --socketmap answered pipelined requests by
    recursion and read input without bound while a lookup was in flight; two
    megabytes of requests behind one slow lookup overflowed its stack
    (SIGSEGV).  Now the connection is not read while the lookup waits, and
    the requests are answered in order afterwards."""
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a server that never answers
    dns.bind(("127.0.0.1", 0))
    port = mxb.free_port()
    conf = daemons.write("mxroute.conf",
                         f"resolver {{ nameservers {{ 127.0.0.1 port {dns.getsockname()[1]}; }}; "
                         f"timeout 2s; attempts 1; }};\n")
    d = daemons.start("mxroute-socketmap", [mxb.binary("mxroute"), "-c", conf, "--socketmap",
                                            f"127.0.0.1:{port}"], env=env(),
                      ready=mxb.tcp_open("127.0.0.1", port), timeout=valgrind_util.slow(10))
    flood = 200000
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            # One lookup that waits for the mute server, then 2.4 MB of
            # requests behind it, sent by a thread while this one reads.
            data = netstring("mxroute user@slow.test") + netstring("mxroute x") * flood
            sender = threading.Thread(target=s.sendall, args=(data,), daemon=True)
            sender.start()
            replies = read_netstrings(s, 1 + flood, valgrind_util.slow(60))
            sender.join(10)
            assert replies[0].startswith("TEMP"), replies[0]     # the lookup timed out
            assert set(replies[1:]) == {"NOTFOUND "}
        assert d.proc.poll() is None, "mxroute died"
    finally:
        dns.close()
    assert d.stop() == 0
