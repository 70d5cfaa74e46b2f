"""Differential test: brokerd and NSD serve the same zone file; for every
name x type (NXDOMAIN, NODATA, wildcard, CNAME, delegation, ANY, an
unsigned zone asked for DNSKEY) rcode, AA/TC and the three sections (as
sets of RRsets, TTLs included) must be equal."""
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

import mxb
from broker_util import ORIGIN, ZONE, Broker, nsd_server_conf, qualify, rrsets
from conftest import require_tool

NAMES = ["@", "ns1", "mx1", "mx2", "smtp", "www", "www2", "ext", "dangling", "cw",
         "anything.wild", "a.b.wild", "wild", "*.wild", "x.*.wild", "q.cn", "sub",
         "host.sub", "ns.sub", "e.nt", "nt", "x.e.nt", "_smtp._tcp", "txt", "ptr", "nope",
         "MX1", "deep.nope.nope"]
TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "ANY", "SRV", "DS", "DNSKEY",
         "PTR"]


def start_nsd(daemons):
    nsd = require_tool("nsd")
    port = mxb.free_port()
    d = daemons.dir
    daemons.write("nsd.zone", ZONE)
    conf = daemons.write("nsd.conf", nsd_server_conf(d, port, "  hide-version: yes\n") +
                         f"""zone:
  name: {ORIGIN}
  zonefile: "{d}/nsd.zone"
""")
    daemons.start("nsd", [nsd, "-d", "-c", conf], ready=lambda: answers(port))
    return port


def answers(port):
    try:
        q = dns.message.make_query(ORIGIN + ".", "SOA")
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
        return r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1
    except Exception:
        return False


def ask(port, name, rdtype, edns):
    q = dns.message.make_query(qualify(name), rdtype, use_edns=edns, payload=1232)
    q.flags &= ~dns.flags.RD
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=3)


def summary(r):
    return {
        "rcode": dns.rcode.to_text(r.rcode()),
        "aa": bool(r.flags & dns.flags.AA),
        "tc": bool(r.flags & dns.flags.TC),
        "answer": rrsets(r.answer),
        "authority": rrsets(r.authority),
        "additional": rrsets(r.additional),
    }


@pytest.fixture
def servers(daemons):
    nsd_port = start_nsd(daemons)
    b = Broker(daemons, ZONE, threads=2)
    return nsd_port, b.port


@pytest.mark.parametrize("edns", [False, True], ids=["plain", "edns"])
def test_same_answers_as_nsd(servers, edns):
    nsd_port, broker_port = servers
    compared = 0
    diffs = []
    for name in NAMES:
        for rdtype in TYPES:
            ours = summary(ask(broker_port, name, rdtype, edns))
            theirs = summary(ask(nsd_port, name, rdtype, edns))
            if ours != theirs:
                diffs.append(f"{name} {rdtype}:\n  brokerd {ours}\n  nsd     {theirs}")
            compared += 1
    assert compared >= 60
    assert not diffs, f"{len(diffs)} of {compared} differ:\n" + "\n".join(diffs[:10])
