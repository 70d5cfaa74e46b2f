"""Zone transfers: AXFR with dig from an allowed and a refused address, and
Knot as a real secondary that follows brokerd through NOTIFY."""
import signal
import subprocess

import dns.message
import dns.query
import dns.rcode

import mxb
from broker_util import ORIGIN, ZONE, Broker, write_zone
from conftest import require_tool


def dig_axfr(port, source):
    dig = require_tool("dig")
    return subprocess.run([dig, "-b", source, "-p", str(port), "@127.0.0.1", ORIGIN, "AXFR",
                           "+nocmd", "+nostats", "+tries=1", "+time=3"],
                          capture_output=True, text=True, timeout=20).stdout


def test_axfr_allowed_and_refused(daemons):
    b = Broker(daemons, zone_extra="allow-transfer { 127.0.0.1; };")
    out = dig_axfr(b.port, "127.0.0.1")
    rrs = [line.split() for line in out.splitlines() if line and not line.startswith(";")]
    assert rrs[0][3] == "SOA" and rrs[-1][3] == "SOA"
    assert len(rrs) == sum(1 for line in ZONE.splitlines()
                           if line and not line.startswith("$")) + 1
    assert ["smtp." + ORIGIN + ".", "300", "IN", "A", "192.0.2.16"] in rrs
    out = dig_axfr(b.port, "127.0.0.2")
    assert "Transfer failed" in out or "REFUSED" in out
    assert "SOA" not in out.replace("Transfer failed", "")
    assert "refused to 127.0.0.2" in b.d.log()
    st = mxb.http_json("127.0.0.1", b.status)
    assert st["queries"]["axfr"] == 2 and st["queries"]["axfr_refused"] == 1


def test_axfr_over_udp_is_refused(daemons):
    b = Broker(daemons, zone_extra="allow-transfer { 127.0.0.1; };")
    q = dns.message.make_query(ORIGIN + ".", "AXFR")
    r = dns.query.udp(q, "127.0.0.1", port=b.port, timeout=3)
    assert r.rcode() == dns.rcode.REFUSED


def knot_serial(port):
    try:
        q = dns.message.make_query(ORIGIN + ".", "SOA")
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
        return r.answer[0][0].serial if r.answer else None
    except Exception:
        return None


def knot_a(port, name):
    q = dns.message.make_query(f"{name}.{ORIGIN}.", "A")
    r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
    return sorted(rd.address for rrset in r.answer for rd in rrset)


def test_knot_secondary_follows_notify(daemons):
    knotd = require_tool("knotd")
    kport = mxb.free_port()
    b = Broker(daemons, zone_extra=f"allow-transfer {{ 127.0.0.1; }}; "
                                   f"also-notify {{ 127.0.0.1 port {kport}; }};")
    d = daemons.dir
    conf = daemons.write("knot.conf", f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{kport}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/knotdb"
remote:
  - id: primary
    address: 127.0.0.1@{b.port}
acl:
  - id: from_primary
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "{d}"
zone:
  - domain: {ORIGIN}
    master: primary
    acl: from_primary
    file: "{d}/knot-secondary.zone"
""")
    k = daemons.start("knotd", [knotd, "-c", conf],
                      ready=lambda: knot_serial(kport) == 2024010101, timeout=20)
    assert knot_a(kport, "mx1") == ["192.0.2.2"]
    write_zone(b.zone, ZONE.replace("2024010101", "2024010105")
               .replace("mx1     A   192.0.2.2", "mx1     A   192.0.2.222"))
    b.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: knot_serial(kport) == 2024010105, timeout=20,
                   what="knot to transfer serial 2024010105", proc=k.proc)
    assert knot_a(kport, "mx1") == ["192.0.2.222"]
    mxb.wait_until(lambda: f"acknowledged by 127.0.0.1:{kport}" in b.d.log(),
                   what="NOTIFY acknowledged")
