"""Response rate limiting: a flood from one client network is limited (most
answers dropped, some slipped as empty TC replies that send a real resolver
to TCP), while another network is answered normally, and TCP is not limited."""
import socket
import subprocess
import time

import dns.flags
import dns.message
import dns.query

import mxb
from conftest import require_tool

ZONE = """$ORIGIN rrl.test.
$TTL 300
@   IN SOA ns1 hostmaster 1 3600 900 604800 60
@   NS  ns1
ns1 A   127.0.0.1
www A   198.51.100.80
"""
RATE = 20
FLOOD = 600


def start(daemons, rate_limit):
    port, status = mxb.free_port(), mxb.free_port()
    zone = daemons.write("rrl.test.zone", ZONE)
    d = daemons.mxbroker("brokerd",
                         f"broker {{ listen {{ 127.0.0.1 port {port}; }}; threads 1;\n"
                         f"  status-listen 127.0.0.1 port {status};\n"
                         f"  {rate_limit}\n"
                         f'  zone "rrl.test" {{ file "{zone}"; }};\n}};\n',
                         ready=lambda: mxb.http_ok("127.0.0.1", status)()
                         and mxb.udp_bound("127.0.0.1", port)())
    return d, port, status


def flood(port, source, n):
    """Send n queries from one source address as fast as possible; return
    (full answers, truncated answers, seconds)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    q = dns.message.make_query("www.rrl.test.", "A")
    t0 = time.monotonic()
    for i in range(n):
        q.id = i
        s.sendto(q.to_wire(), ("127.0.0.1", port))
    full = tc = 0
    s.settimeout(1.0)
    try:
        while True:
            r = dns.message.from_wire(s.recv(4096))
            if r.flags & dns.flags.TC:
                assert not r.answer
                tc += 1
            else:
                assert r.answer[0][0].address == "198.51.100.80"
                full += 1
    except socket.timeout:
        pass
    s.close()
    return full, tc, time.monotonic() - t0 - 1.0


def test_flood_limited_other_network_answered(daemons):
    d, port, status = start(daemons, f"rate-limit {{ responses-per-second {RATE}; slip 2; }};")
    full, tc, secs = flood(port, "127.0.0.1", FLOOD)
    # One second of burst plus the refill while the flood lasted, and slack.
    assert full <= RATE * (1 + secs) + 5, (full, secs)
    assert full >= RATE // 2, full
    assert tc >= (FLOOD - full) // 3, (full, tc)      # slip 2: about half the rest
    assert full + tc < FLOOD                           # the rest were dropped
    # Another client network (127.0.1.0/24) is answered in full meanwhile.
    q = dns.message.make_query("www.rrl.test.", "A")
    r = dns.query.udp(q, "127.0.0.1", port=port, source="127.0.1.5", timeout=3)
    assert not r.flags & dns.flags.TC and r.answer[0][0].address == "198.51.100.80"
    # The flooded network still gets everything over TCP, as a slipped
    # client would ask next.
    out = subprocess.run([require_tool("dig"), "+tcp", "+short", "-b", "127.0.0.1",
                          "@127.0.0.1", "-p", str(port), "www.rrl.test", "A"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.split() == ["198.51.100.80"], out
    q = mxb.http_json("127.0.0.1", status)["queries"]
    assert q["rate_limited_dropped"] > 0 and q["rate_limited_slipped"] == tc
    text = mxb.http_get("127.0.0.1", status, "/metrics")[2]
    assert 'mxbroker_dns_rate_limited_total{action="slip"}' in text


def test_no_limit_by_default(daemons):
    d, port, status = start(daemons, "")
    full, tc, _ = flood(port, "127.0.0.1", 300)
    assert tc == 0 and full == 300
