"""brokerd as an authoritative server: the answer rules of RFC 1034/1035/
2181/2308/4592/6891/8482 checked with dnspython and dig, malformed input,
status, reload and -t."""
import os
import random
import signal
import socket
import struct
import subprocess

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import mxb
from broker_util import BIG, ORIGIN, ZONE, Broker, qualify, write_zone
from conftest import require_tool


@pytest.fixture
def broker(daemons):
    return Broker(daemons, ZONE + BIG, threads=2,
                  extra="tcp-idle-timeout 1;")


def names(section):
    return {(r.name.to_text().lower(), dns.rdatatype.to_text(r.rdtype)) for r in section}


def test_header_flags(broker):
    r = broker.ask("mx1", "A", rd=True)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA and r.flags & dns.flags.QR
    assert not r.flags & dns.flags.RA
    assert r.flags & dns.flags.RD
    r = broker.ask("mx1", "A", rd=False)
    assert not r.flags & dns.flags.RD
    assert [rd.address for rd in r.answer[0]] == ["192.0.2.2"]


def test_nxdomain_and_nodata_carry_soa(broker):
    for name, rdtype, rcode in [("nope", "A", dns.rcode.NXDOMAIN),
                                ("mx1", "TXT", dns.rcode.NOERROR),
                                ("nt", "A", dns.rcode.NOERROR)]:
        r = broker.ask(name, rdtype)
        assert r.rcode() == rcode, name
        assert r.answer == []
        assert len(r.authority) == 1
        soa = r.authority[0]
        assert soa.rdtype == dns.rdatatype.SOA
        assert soa.ttl == 60  # RFC 2308: min(SOA TTL 300, minimum 60)


def test_cname_followed_inside_the_zone(broker):
    r = broker.ask("www2", "A")
    assert names(r.answer) == {(qualify("www2"), "CNAME"), (qualify("www"), "CNAME"),
                               (qualify("mx1"), "A")}
    r = broker.ask("ext", "A")
    assert names(r.answer) == {(qualify("ext"), "CNAME")}
    r = broker.ask("dangling", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert names(r.answer) == {(qualify("dangling"), "CNAME")}


def test_wildcards_rfc4592(broker):
    r = broker.ask("anything.wild", "A")
    assert names(r.answer) == {(qualify("anything.wild"), "A")}
    r = broker.ask("a.b.wild", "TXT")
    assert names(r.answer) == {(qualify("a.b.wild"), "TXT")}
    r = broker.ask("x.wild", "MX")     # wildcard NODATA
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    r = broker.ask("x.e.nt", "A")      # e.nt exists: no wildcard there
    assert r.rcode() == dns.rcode.NXDOMAIN
    r = broker.ask("q.cn", "A")        # wildcard CNAME, then followed
    assert names(r.answer) == {(qualify("q.cn"), "CNAME"), (qualify("mx2"), "A")}


def test_delegation_is_a_referral_with_glue(broker):
    for name in ["sub", "host.sub", "ns.sub"]:
        r = broker.ask(name, "A")
        assert r.rcode() == dns.rcode.NOERROR
        assert not r.flags & dns.flags.AA
        assert r.answer == []
        assert names(r.authority) == {(qualify("sub"), "NS")}
        assert names(r.additional) == {(qualify("ns.sub"), "A")}


def test_out_of_zone_is_refused(broker):
    r = broker.ask("www.example.org.", "A")
    assert r.rcode() == dns.rcode.REFUSED
    assert not r.flags & dns.flags.AA
    r = broker.ask("example.test.", "SOA")
    assert r.rcode() == dns.rcode.REFUSED


def test_any_returns_one_rrset(broker):
    r = broker.ask("@", "ANY")
    assert r.rcode() == dns.rcode.NOERROR
    assert len(r.answer) == 1


def test_additional_section_processing(broker):
    r = broker.ask("@", "MX")
    assert {(qualify("mx1"), "A"), (qualify("mx1"), "AAAA"),
            (qualify("mx2"), "A")} <= names(r.additional)
    r = broker.ask("_smtp._tcp", "SRV")
    assert (qualify("mx1"), "A") in names(r.additional)


def test_edns(broker):
    r = broker.ask("mx1", "A", payload=4096, want_dnssec=True)
    assert r.edns == 0
    assert r.payload == 1232
    assert r.ednsflags & dns.flags.DO
    r = broker.ask("mx1", "A", payload=1232, version=1)
    assert r.rcode() == dns.rcode.BADVERS
    assert r.answer == []


def test_truncation_and_tcp_fallback(broker):
    r = broker.ask("big", "TXT")               # 512 bytes without EDNS
    assert r.flags & dns.flags.TC
    r = broker.ask("big", "TXT", payload=1232)
    assert r.flags & dns.flags.TC
    r = broker.ask("big", "TXT", tcp=True)
    assert not r.flags & dns.flags.TC
    assert len(r.answer[0]) == 40
    r = broker.ask("smtp", "A", payload=512)     # fits: no TC
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 6


def test_question_case_is_echoed_and_names_compressed(broker):
    q = dns.message.make_query("MxOnE.MaIl.ExAmPlE.tEsT.".replace("MxOnE", "Mx1"), "A")
    wire = broker.raw(q.to_wire())
    qlen = len(q.to_wire()) - 11   # without our OPT record
    assert b"Mx1\x04MaIl\x07ExAmPlE\x04tEsT" in wire[:qlen + 11]
    r = dns.message.from_wire(wire)
    assert r.question[0].name.to_text() == "Mx1.MaIl.ExAmPlE.tEsT."
    # The answer owner is a pointer to the question (offset 12).
    qend = 12 + len(b"\x03Mx1\x04MaIl\x07ExAmPlE\x04tEsT\x00") + 4
    assert wire[qend:qend + 2] == b"\xc0\x0c"


def test_tcp_pipelined_and_idle_timeout(broker):
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    batch = b""
    for i, name in enumerate(["mx1", "mx2", "nope", "www"]):
        q = dns.message.make_query(qualify(name), "A")
        q.id = 100 + i
        w = q.to_wire()
        batch += struct.pack("!H", len(w)) + w
    s.sendall(batch)
    ids = []
    buf = b""
    while len(ids) < 4:
        chunk = s.recv(65535)
        assert chunk, "connection closed early"
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            n = struct.unpack("!H", buf[:2])[0]
            ids.append(dns.message.from_wire(buf[2:2 + n]).id)
            buf = buf[2 + n:]
    assert ids == [100, 101, 102, 103]
    s.settimeout(5)
    assert s.recv(10) == b""   # closed by the 1 s idle timeout
    s.close()


MALFORMED = {
    "empty": b"",
    "short header": b"\x12\x34\x01\x00\x00\x01",
    "qdcount 0": b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    "qdcount 2": (b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00"
                  b"\x01a\x00\x00\x01\x00\x01\x01b\x00\x00\x01\x00\x01"),
    "label loop": b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
    "oversize label": (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40"
                       + b"a" * 64 + b"\x00\x00\x01\x00\x01"),
    "name past end": b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
    "bad OPT": (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
                b"\x01a\x00\x00\x01\x00\x01" b"\x01x\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"),
    "OPT past end": (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01"
                     b"\x01a\x00\x00\x01\x00\x01" b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x09"),
    "response": b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_packets(broker, case):
    reply = broker.raw(MALFORMED[case], timeout=0.5)
    if reply is not None:
        assert len(reply) >= 12
        assert reply[:2] == MALFORMED[case][:2]
        assert reply[3] & 0x0f in (1, 5)   # FORMERR, or REFUSED for "a." out of zone
    assert broker.ask("mx1", "A").rcode() == dns.rcode.NOERROR


def test_random_bytes_never_crash(broker):
    rnd = random.Random(1122)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    good = dns.message.make_query(qualify("mx1"), "A").to_wire()
    for i in range(3000):
        if i % 2:
            data = bytearray(good)
            for _ in range(rnd.randint(1, 6)):
                data[rnd.randrange(len(data))] = rnd.randrange(256)
            data = bytes(data[:rnd.randint(0, len(data))])
        else:
            data = bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 80)))
        s.sendto(data, ("127.0.0.1", broker.port))
    s.close()
    assert broker.d.proc.poll() is None
    assert broker.ask("mx1", "A").rcode() == dns.rcode.NOERROR
    assert broker.ask("mx1", "A", tcp=True).rcode() == dns.rcode.NOERROR


def test_dig_agrees(broker):
    dig = require_tool("dig")
    out = subprocess.run([dig, "+norec", "+short", "-p", str(broker.port), "@127.0.0.1",
                          "smtp." + ORIGIN, "A"], capture_output=True, text=True,
                         timeout=10).stdout.split()
    assert sorted(out) == [f"192.0.2.{i}" for i in range(11, 17)]
    out = subprocess.run([dig, "+norec", "+tcp", "-p", str(broker.port), "@127.0.0.1",
                          "nope." + ORIGIN, "A"], capture_output=True, text=True,
                         timeout=10).stdout
    assert "status: NXDOMAIN" in out and "flags: qr aa;" in out


def test_status_and_metrics(broker):
    broker.ask("mx1", "A")
    broker.ask("nope", "A")
    broker.ask("mx1", "A", tcp=True)
    st = mxb.http_json("127.0.0.1", broker.status)
    assert st["zones"] == [{"name": ORIGIN, "serial": 2024010101, "records": 71,
                            "names": st["zones"][0]["names"]}]
    assert st["queries"]["udp"] >= 2 and st["queries"]["tcp"] >= 1
    assert st["queries"]["by_rcode"]["NXDOMAIN"] >= 1
    code, _, body = mxb.http_get("127.0.0.1", broker.status, "/metrics")
    assert code == 200
    assert 'mxbroker_dns_responses_total{rcode="NXDOMAIN"}' in body
    assert f'mxbroker_zone_serial{{zone="{ORIGIN}"}} 2024010101' in body


def test_sighup_reload_good_and_bad(daemons):
    b = Broker(daemons)
    assert b.serial() == 2024010101
    write_zone(b.zone, ZONE.replace("2024010101", "2024010102")
               .replace("192.0.2.2\n", "192.0.2.200\n"))
    b.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: b.serial() == 2024010102, what="new serial")
    assert b.ask("mx1", "A").answer[0][0].address == "192.0.2.200"
    write_zone(b.zone, ZONE.replace("2024010101", "2024010103") + "broken A 300.1.1.1\n")
    b.d.signal(signal.SIGHUP)
    line = ZONE.count("\n") + 1
    mxb.wait_until(lambda: f"{b.zone}:{line}:" in b.d.log(), what="reload error")
    assert "keeps serving serial 2024010102" in b.d.log()
    assert b.serial() == 2024010102
    assert b.ask("mx1", "A").answer[0][0].address == "192.0.2.200"


def test_bad_zone_refuses_to_start(daemons, tmp_path):
    bad = ZONE + "oops IN A not-an-address\n"
    b = Broker(daemons, bad, ready=False)
    assert b.d.proc.wait(10) == 1
    line = ZONE.count("\n") + 1
    assert f"{b.zone}:{line}:" in b.d.log()
    r = mxb.run("brokerd", "-t", "-c", os.path.join(daemons.dir, "brokerd.conf"))
    assert r.returncode == 1
    assert f"{b.zone}:{line}:" in r.stderr


def test_check_fails_on_missing_zone_files(tmp_path):
    """-t checks what start-up needs: a zone file that is not there is an
    error with the statement's line, not "configuration OK"."""
    conf = tmp_path / "b.conf"
    conf.write_text('broker { zone "a.test" { file "nothere.zone"; }; };\n')
    r = mxb.run("brokerd", "-t", "-c", str(conf))
    assert r.returncode != 0
    assert f"{conf}:1:" in r.stderr and "nothere.zone" in r.stderr, r.stderr
    assert "No such file" in r.stderr, r.stderr


def test_wildcard_listen_answers_from_the_address_asked(daemons):
    port = mxb.free_port()
    zone = daemons.write("w.zone", ZONE)
    daemons.mxbroker("brokerd", f'broker {{ listen {{ 0.0.0.0 port {port}; }}; threads 2;\n'
                     f'  zone "{ORIGIN}" {{ file "{zone}"; }}; }};',
                     ready=mxb.udp_bound("127.0.0.1", port))
    for dest in ["127.0.0.1", "127.0.0.2", "127.0.0.3"]:
        q = dns.message.make_query(qualify("mx1"), "A")
        # dnspython refuses a reply from another address than the one asked.
        r = dns.query.udp(q, dest, port=port, timeout=3)
        assert r.answer[0][0].address == "192.0.2.2"
