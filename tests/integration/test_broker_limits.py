"""DNS TCP limits: tcp-max-clients refuses connections beyond the limit,
and running out of descriptors pauses accepting instead of spinning, while
UDP keeps answering and TCP recovers."""
import os
import socket
import subprocess
import time

import dns.exception
import dns.message
import dns.query

import mxb
from conftest import require_tool

ZONE = """$ORIGIN lim.test.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 900 604800 60
@   NS  ns1
ns1 A   127.0.0.1
www A   198.51.100.80
"""


def start(daemons, extra):
    port, status = mxb.free_port(), mxb.free_port()
    zone = daemons.write("lim.test.zone", ZONE)
    d = daemons.mxbroker("brokerd",
                         f"broker {{ listen {{ 127.0.0.1 port {port}; }}; threads 1;\n"
                         f"  status-listen 127.0.0.1 port {status}; {extra}\n"
                         f'  zone "lim.test" {{ file "{zone}"; }};\n}};\n',
                         ready=lambda: mxb.http_ok("127.0.0.1", status)()
                         and mxb.udp_bound("127.0.0.1", port)())
    return d, port


def tcp_query(port):
    q = dns.message.make_query("www.lim.test.", "A")
    return dns.query.tcp(q, "127.0.0.1", port=port, timeout=3).answer[0][0].address


def udp_query(port):
    q = dns.message.make_query("www.lim.test.", "A")
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3).answer[0][0].address


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_by_peer(s):
    s.settimeout(3)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_tcp_max_clients(daemons):
    d, port = start(daemons, "tcp-max-clients 5; tcp-idle-timeout 30;")
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(5)]
    try:
        extra = socket.create_connection(("127.0.0.1", port))
        assert closed_by_peer(extra), "the 6th client was not refused"
        extra.close()
        assert udp_query(port) == "198.51.100.80"
    finally:
        for s in held:
            s.close()
    mxb.wait_until(lambda: _tcp_ok(port), 10, "TCP to work again")


def _tcp_ok(port):
    try:
        return tcp_query(port) == "198.51.100.80"
    except (OSError, dns.exception.DNSException):
        return False


def test_descriptor_exhaustion_pauses_accept(daemons):
    prlimit = require_tool("prlimit")
    d, port = start(daemons, "tcp-max-clients 1000; tcp-idle-timeout 30;")
    subprocess.run([prlimit, f"--pid={d.pid}", "--nofile=48:48"], check=True)
    held = []
    try:
        for _ in range(80):   # more than the daemon can accept
            s = socket.socket()
            s.settimeout(2)
            s.connect(("127.0.0.1", port))   # completes in the kernel backlog
            held.append(s)
        before = cpu_seconds(d.pid)
        time.sleep(2)        # measuring CPU use over an interval, not waiting
        spent = cpu_seconds(d.pid) - before
        assert spent < 0.5, f"brokerd used {spent:.2f} s of CPU in 2 s: accept spins"
        assert udp_query(port) == "198.51.100.80"
        assert "accept: Too many open files: pausing" in d.log()
    finally:
        for s in held:
            s.close()
    mxb.wait_until(lambda: _tcp_ok(port), 15, "TCP to work again")
