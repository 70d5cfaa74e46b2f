"""Zone transfers with TSIG (RFC 8945): dig and dnspython as clients (signed,
unsigned, wrong secret, unknown key, a key of another zone, a clock outside
the fudge), and Knot and NSD as secondaries that transfer over TSIG.

brokerd serves three zones with a key each; the zone under test is first,
in the middle or last, so key and zone lookups cannot get by on position."""
import base64
import os
import re
import socket
import subprocess
import time
from unittest import mock

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import pytest

import broker_util
import brokering_util as bu
from broker_util import addrs_at, serial_at
import mxb
from conftest import require_tool

ORIGIN = bu.ORIGIN
H = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
OTHERS = ["first.example.test", "last.example.test"]


def secret():
    """A key secret made for this test run (32 random bytes)."""
    return base64.b64encode(os.urandom(32)).decode()


class Keys:
    """One hmac-sha256 key per zone, plus one that no zone names."""

    def __init__(self):
        self.k = {z: (f"key-{i}", secret()) for i, z in enumerate([ORIGIN] + OTHERS)}
        self.stranger = ("stranger", secret())

    def name(self, zone):
        return self.k[zone][0]

    def secret(self, zone):
        return self.k[zone][1]

    def conf(self):
        return "".join(f'key "{n}" {{ algorithm hmac-sha256; secret "{s}"; }};\n'
                       for n, s in list(self.k.values()) + [self.stranger])


def other_zone_text(name):
    return f"""$ORIGIN {name}.
$TTL 300
@  IN SOA ns1 hostmaster 7 3600 900 604800 60
@  NS ns1
ns1 A 127.0.0.1
www A 192.0.2.{len(name)}
"""


class TsigLB(bu.LB):
    """bu.LB with three zones: ORIGIN (with the clusters) at `position`."""

    def __init__(self, daemons, keys, position, clusters, zone_extra=None, **kw):
        self.keys = keys
        self.position = position
        self.extra_of = zone_extra or {}
        self.files = {z: daemons.write(f"{z}.zone", other_zone_text(z)) for z in OTHERS}
        super().__init__(daemons, clusters, **kw)

    def zone_stmt(self, zone, path):
        acl = self.extra_of.get(zone, f'allow-transfer {{ 127.0.0.1 key "{self.keys.name(zone)}"; }};')
        return f'  zone "{zone}" {{ file "{path}"; {acl} }};\n'

    def conf_text(self):
        zones = [self.zone_stmt(z, self.files[z]) for z in OTHERS]
        zones.insert(self.position, self.zone_stmt(ORIGIN, self.zone))
        return (bu.KEYDEF + self.keys.conf() +
                f"broker {{ listen {{ 127.0.0.1 port {self.port}; }};\n"
                f"  status-listen 127.0.0.1 port {self.status}; {self.broker_extra}\n" +
                "".join(zones) + "};\n" + self.clusters)


def dig_axfr(port, zone, key=None, source="127.0.0.1", rdtype="AXFR"):
    dig = require_tool("dig")
    argv = [dig, "-b", source, "-p", str(port), "@127.0.0.1", zone, rdtype,
            "+nocmd", "+tries=1", "+time=3"]
    if key:
        argv += ["-y", f"hmac-sha256:{key[0]}:{key[1]}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout


def records(out):
    return [line.split() for line in out.splitlines()
            if line and not line.startswith(";") and "TSIG" not in line]


def keyring(name, sec):
    return dns.tsigkeyring.from_text({name: ("hmac-sha256", sec)})


def ask_signed(port, zone, name, sec, at=None):
    """A signed AXFR with dnspython (its TSIG made at time `at`); the reply."""
    q = dns.message.make_query(zone + ".", "AXFR")
    q.use_tsig(keyring(name, sec), keyname=name)
    with mock.patch("time.time", return_value=at or time.time()):
        wire = q.to_wire()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        dns.query.send_tcp(s, wire)
        return dns.query.receive_tcp(s, keyring=q.keyring, request_mac=q.mac)[0]
    finally:
        s.close()


@pytest.fixture(params=[0, 1, 2], ids=["first", "middle", "last"])
def position(request):
    return request.param


def test_axfr_needs_the_zones_key(daemons, position):
    keys = Keys()
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50})
    lb = TsigLB(daemons, keys, position, bu.cluster_conf(H[:2], agents.port),
                zone_extra={ORIGIN: f'allow-transfer {{ 127.0.0.1 key "{keys.name(ORIGIN)}"; '
                            f'127.0.0.2; key "{keys.name(OTHERS[1])}"; }};'})
    lb.wait_set([H[1], H[0]], 30)
    good = (keys.name(ORIGIN), keys.secret(ORIGIN))

    out = dig_axfr(lb.port, ORIGIN)
    assert "Transfer failed" in out and not records(out)
    mxb.wait_until(lambda: re.search(rf"xfr: {ORIGIN} AXFR refused to 127\.0\.0\.1:\d+: "
                                     r"key -: not allowed", lb.d.log()), what="refusal logged")

    rrs = records(dig_axfr(lb.port, ORIGIN, good))
    assert rrs[0][3] == "SOA" and rrs[-1][3] == "SOA"
    assert sorted(r[4] for r in rrs if r[0] == bu.CLUSTER + "." and r[3] == "A") == \
        sorted([H[0], H[1]])
    assert re.search(rf"AXFR of {ORIGIN} serial \d+ to 127\.0\.0\.1:\d+ key {good[0]}",
                     lb.d.log())

    out = dig_axfr(lb.port, ORIGIN, (good[0], secret()))
    assert "BADSIG" in out and not records(out)
    out = dig_axfr(lb.port, ORIGIN, ("nobody-knows", good[1]))
    assert "BADKEY" in out and not records(out)
    # A key of the configuration that no allow-transfer names: unknown here.
    out = dig_axfr(lb.port, ORIGIN, keys.stranger)
    assert "BADKEY" in out and not records(out)
    # The key of another zone: verified, signed REFUSED, not that zone's data.
    out = dig_axfr(lb.port, ORIGIN, (keys.name(OTHERS[0]), keys.secret(OTHERS[0])))
    assert "Transfer failed" in out and not records(out)
    log = lb.d.log()
    assert re.search(rf"refused to 127\.0\.0\.1:\d+: key {good[0]}\.: bad MAC", log)
    assert re.search(r"refused to 127\.0\.0\.1:\d+: key nobody-knows\.: unknown key", log)
    assert re.search(rf"refused to 127\.0\.0\.1:\d+: key {keys.name(OTHERS[0])}\.: "
                     "not allowed by allow-transfer", log)

    # The pairs: 127.0.0.2 needs no key; a key listed alone works from anywhere.
    assert records(dig_axfr(lb.port, ORIGIN, source="127.0.0.2"))
    assert records(dig_axfr(lb.port, ORIGIN, (keys.name(OTHERS[1]), keys.secret(OTHERS[1])),
                            source="127.0.0.3"))
    assert not records(dig_axfr(lb.port, ORIGIN, good, source="127.0.0.3"))
    # A name below the apex is no zone: NOTAUTH, even with the key.
    r = ask_signed(lb.port, bu.CLUSTER, *good)
    assert r.rcode() == dns.rcode.NOTAUTH and not r.answer and r.had_tsig
    # Every other zone answers its own key only.
    for z in OTHERS:
        assert records(dig_axfr(lb.port, z, (keys.name(z), keys.secret(z))))
        assert not records(dig_axfr(lb.port, z, good))
    st = lb.state()["queries"]
    assert st["axfr_refused"] >= 6


def test_ixfr_by_dig(daemons, position):
    """After a brokered change IXFR=<old serial> with the key is the diff;
    the current serial gets the SOA alone; a serial the journal does not
    reach back to gets the whole zone; unsigned, it is refused."""
    keys = Keys()
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = TsigLB(daemons, keys, position, bu.cluster_conf(H, agents.port))
    lb.wait_set([H[2], H[1]], 30)
    key = (keys.name(ORIGIN), keys.secret(ORIGIN))
    s0 = lb.serial()
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], 30)
    s1 = lb.serial()
    assert s1 != s0
    rrs = records(dig_axfr(lb.port, ORIGIN, key, rdtype=f"IXFR={s0}"))
    soas = [i for i, r in enumerate(rrs) if r[3] == "SOA"]
    assert [rrs[i][6] for i in soas] == [str(s1), str(s0), str(s1), str(s1)], rrs
    removed = rrs[soas[1] + 1:soas[2]]
    added = rrs[soas[2] + 1:soas[3]]
    a = bu.CLUSTER + "."
    assert [a, H[2]] in [[r[0], r[4]] for r in removed if r[3] == "A"], removed
    assert [a, H[0]] in [[r[0], r[4]] for r in added if r[3] == "A"], added
    assert not [r for r in removed + added if r[0] != a and r[3] != "TXT"], (removed, added)
    assert re.search(rf"IXFR of {ORIGIN} serial {s0} to {s1} \(\d+ steps?\) to "
                     rf"127\.0\.0\.1:\d+ key {key[0]}", lb.d.log())

    rrs = records(dig_axfr(lb.port, ORIGIN, key, rdtype=f"IXFR={s1}"))
    assert len(rrs) == 1 and rrs[0][3] == "SOA" and rrs[0][6] == str(s1), rrs
    rrs = records(dig_axfr(lb.port, ORIGIN, key, rdtype=f"IXFR={s0 - 100}"))
    assert rrs[0][3] == "SOA" and rrs[1][3] != "SOA" and rrs[-1][3] == "SOA", rrs
    assert "not in the journal, whole zone" in lb.d.log()
    assert not records(dig_axfr(lb.port, ORIGIN, rdtype=f"IXFR={s0}"))
    # Over UDP (RFC 1995 2): the current SOA only, so the client asks over TCP.
    r = dns.query.udp(dns.message.make_query(ORIGIN + ".", "IXFR"), "127.0.0.1",
                      port=lb.port, timeout=3)
    assert r.rcode() == dns.rcode.NOERROR
    assert [(rs.rdtype, rs[0].serial) for rs in r.answer] == [(dns.rdatatype.SOA, s1)]
    r = dns.query.udp(dns.message.make_query(bu.CLUSTER + ".", "IXFR"), "127.0.0.1",
                      port=lb.port, timeout=3)
    assert r.rcode() == dns.rcode.REFUSED
    assert re.search(rf"{ORIGIN} IXFR refused to 127\.0\.0\.1:\d+: key -", lb.d.log())


def test_tsig_errors_seen_by_dnspython(daemons):
    keys = Keys()
    agents = bu.Agents(daemons, {H[0]: 20})
    lb = TsigLB(daemons, keys, 1, bu.cluster_conf(H[:1], agents.port, max_members=1))
    name, sec = keys.name(ORIGIN), keys.secret(ORIGIN)
    r = ask_signed(lb.port, ORIGIN, name, sec)
    assert r.rcode() == dns.rcode.NOERROR and r.had_tsig
    with pytest.raises(dns.tsig.PeerBadTime):
        ask_signed(lb.port, ORIGIN, name, sec, at=time.time() - 3600)
    with pytest.raises(dns.tsig.PeerBadSignature):
        ask_signed(lb.port, ORIGIN, name, secret())
    with pytest.raises(dns.tsig.PeerBadKey):
        ask_signed(lb.port, ORIGIN, "unknown-key", sec)
    assert re.search(rf"key {name}\.: time outside the fudge", lb.d.log())


def test_many_messages_each_signed(daemons):
    """A zone over several messages: dig checks the MAC of every one."""
    keys = Keys()
    agents = bu.Agents(daemons, {H[0]: 20})
    big = bu.ZONE + "".join(f'big{i} TXT "{"x" * 200}"\n' for i in range(600))
    lb = TsigLB(daemons, keys, 2, bu.cluster_conf(H[:1], agents.port, max_members=1),
                zone_text=big)
    out = dig_axfr(lb.port, ORIGIN, (keys.name(ORIGIN), keys.secret(ORIGIN)))
    m = re.search(r"XFR size: (\d+) records \(messages (\d+)", out)
    assert m and int(m.group(2)) >= 5, out[-500:]
    assert "Couldn't verify" not in out and "failed" not in out.lower()


# ---- real secondaries ---------------------------------------------------------

def knot_conf(d, port, lb, keys, zones):
    keydefs = "".join(f"  - id: {keys.name(z)}\n    algorithm: hmac-sha256\n"
                      f"    secret: {keys.secret(z)}\n" for z in zones)
    remotes = "".join(f"  - id: primary-{i}\n    address: 127.0.0.1@{lb.port}\n"
                      f"    key: {keys.name(z)}\n" for i, z in enumerate(zones))
    acls = "".join(f"  - id: notify-{i}\n    address: 127.0.0.1\n    key: {keys.name(z)}\n"
                   f"    action: notify\n" for i, z in enumerate(zones))
    zonedefs = "".join(f"  - domain: {z}\n    master: primary-{i}\n    acl: notify-{i}\n"
                       f"    file: \"{d}/knot-{z}.zone\"\n" for i, z in enumerate(zones))
    return broker_util.knot_server_conf(d, port, "knotdb") + f"""key:
{keydefs}remote:
{remotes}acl:
{acls}template:
  - id: default
    storage: "{d}"
zone:
{zonedefs}"""


def start_knot(daemons, port, lb, keys, zones):
    os.makedirs(f"{daemons.dir}/knotdb", exist_ok=True)
    conf = daemons.write("knot.conf", knot_conf(daemons.dir, port, lb, keys, zones))
    return daemons.start("knotd", [require_tool("knotd"), "-c", conf])


def nsd_conf(d, port, lb, keys, zones, request=""):
    keydefs = "".join(f"key:\n  name: \"{keys.name(z)}\"\n  algorithm: hmac-sha256\n"
                      f"  secret: \"{keys.secret(z)}\"\n" for z in zones)
    zonedefs = "".join(f"zone:\n  name: {z}\n  zonefile: \"{d}/nsd-{z}.zone\"\n"
                       f"  request-xfr: {request}127.0.0.1@{lb.port} {keys.name(z)}\n"
                       f"  allow-notify: 127.0.0.1 {keys.name(z)}\n"
                       "  store-ixfr: yes\n  provide-xfr: 127.0.0.1 NOKEY\n" for z in zones)
    return broker_util.nsd_server_conf(d, port, "  verbosity: 2\n") + keydefs + zonedefs


def start_nsd(daemons, port, lb, keys, zones, request=""):
    conf = daemons.write("nsd.conf", nsd_conf(daemons.dir, port, lb, keys, zones, request))
    return daemons.start("nsd", [require_tool("nsd"), "-d", "-c", conf])


def notify_to(keys, zone, port):
    return f'also-notify {{ 127.0.0.1 port {port} key "{keys.name(zone)}"; }};'


@pytest.mark.parametrize("secondary", ["knot", "nsd"])
def test_secondary_follows_signed_notify(daemons, position, secondary):
    """The secondary transfers every zone over TSIG, then a brokered change
    reaches it through a signed NOTIFY whose signed reply is the ack."""
    keys = Keys()
    port = mxb.free_port()
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    zones = [ORIGIN] + OTHERS
    acl = {z: f'allow-transfer {{ 127.0.0.1 key "{keys.name(z)}"; }}; '
              f"{notify_to(keys, z, port)}" for z in zones}
    lb = TsigLB(daemons, keys, position, bu.cluster_conf(H, agents.port), zone_extra=acl)
    lb.wait_set([H[2], H[1]], 30)
    start = start_knot if secondary == "knot" else start_nsd
    sec = start(daemons, port, lb, keys, zones)
    mxb.wait_until(lambda: addrs_at(port, bu.CLUSTER) == {H[2], H[1]}, 20,
                   f"{secondary} to carry the published set", proc=sec.proc)
    for z in OTHERS:
        mxb.wait_until(lambda: serial_at(port, z) == 7, 20, f"{secondary} to load {z}",
                       proc=sec.proc)
    log = lb.d.log()
    for z in zones:
        assert re.search(rf"AXFR of {z} serial \d+ to 127\.0\.0\.1:\d+ key {keys.name(z)}",
                         log), z
    mxb.wait_until(lambda: re.search(rf"{ORIGIN} serial \d+ acknowledged by 127\.0\.0\.1:{port}",
                                     lb.d.log()), what="the first signed ack")
    acked = lb.state()["notify"]["acked"]
    before = lb.serial()
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], 30)
    serial = lb.serial()
    # The zone's refresh is an hour: only the NOTIFY brings the change this soon.
    mxb.wait_until(lambda: serial_at(port, ORIGIN) == serial, 20,
                   f"{secondary} to follow the NOTIFY to serial {serial}", proc=sec.proc)
    assert addrs_at(port, bu.CLUSTER) == {H[1], H[0]}
    mxb.wait_until(lambda: lb.state()["notify"]["acked"] > acked, what="the signed ack")
    log = lb.d.log()
    assert "refused" not in log and "without a valid TSIG" not in log
    # It followed by IXFR: our side sent the step, theirs says IXFR.
    assert re.search(rf"IXFR of {ORIGIN} serial \d+ to {serial} \(\d+ steps?\) to "
                     rf"127\.0\.0\.1:\d+ key {keys.name(ORIGIN)}", log), log[-3000:]
    theirs = sec.log()
    if secondary == "knot":
        assert re.search(rf"\[{re.escape(ORIGIN)}\.\] IXFR, incoming, remote 127\.0\.0\.1@"
                         rf"{lb.port}.*finished", theirs), theirs[-3000:]
    else:
        # NSD logs no transfer type; it keeps the IXFRs it receives
        # (store-ixfr, no create-ixfr) and serves them: a diff from it proves
        # it received one.
        rrs = records(dig_axfr(port, ORIGIN, rdtype=f"IXFR={before}"))
        assert [r[3] for r in rrs[:2]] == ["SOA", "SOA"] and rrs[1][6] == str(before), rrs


def test_unsigned_ack_of_a_signed_notify_does_not_count(daemons):
    """A peer that answers our signed NOTIFY without a TSIG (or with a
    forged one) has not acknowledged it."""
    keys = Keys()
    seen = []

    def answer(sock, data, peer):
        q = dns.message.from_wire(data, keyring=keyring(keys.name(ORIGIN),
                                                           keys.secret(ORIGIN)))
        seen.append(q.had_tsig)
        r = dns.message.make_response(q)
        r.keyring = r.tsig = None  # the answer goes out without a TSIG
        sock.sendto(r.to_wire(), peer)

    peer = mxb.UdpResponder("127.0.0.1", 0, answer)
    try:
        agents = bu.Agents(daemons, {H[0]: 20})
        lb = TsigLB(daemons, keys, 0, bu.cluster_conf(H[:1], agents.port, max_members=1),
                    zone_extra={ORIGIN: notify_to(keys, ORIGIN, peer.port)})
        mxb.wait_until(lambda: "without a valid TSIG of key key-0" in lb.d.log(), 10,
                       "the unsigned ack refused")
        assert seen and all(seen), "the NOTIFY must be signed (dnspython verified it)"
        assert lb.state()["notify"]["acked"] == 0
    finally:
        peer.close()


def test_check_warns_about_bare_addresses_beside_keys(daemons):
    keys = Keys()
    zone = daemons.write("z.zone", other_zone_text(OTHERS[0]))
    conf = daemons.write("t.conf", keys.conf() + f"""broker {{ zone "{OTHERS[0]}" {{
  file "{zone}"; allow-transfer {{ key "{keys.name(ORIGIN)}"; 192.0.2.1; }}; }}; }};
""")
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert ("allow-transfer lets 192.0.2.1/32 transfer without a TSIG although it names key "
            f"'{keys.name(ORIGIN)}'") in r.stderr
