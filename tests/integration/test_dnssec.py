"""DNSSEC (issue 18, signing): brokerd signs its zone with ldns-keygen keys;
Unbound with the zone's trust anchor validates the cluster name, static
names, NXDOMAIN and NODATA (AD set), delv agrees, ldns-verify-zone passes on
an AXFR, a failover's new answer validates, and a tampered RRSIG is bogus."""
import base64
import os
import re
import socket
import subprocess
import threading

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

import brokering_util as bu
import mxb
from broker_util import knot_server_conf, nsd_server_conf, rrsets

ORIGIN = bu.ORIGIN
H = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]

ZONE = f"""$ORIGIN {ORIGIN}.
$TTL 300
@       IN SOA ns1 hostmaster 2024010101 3600 900 604800 60
@       NS  ns1
@       MX  10 smtp
ns1     A   127.0.0.1
smtp    A   192.0.2.99
static  A   192.0.2.7
static  AAAA 2001:db8::7
txt     TXT "hello"
e.nt    A   192.0.2.77
sub     NS  ns.sub
ns.sub  A   192.0.2.53
sec     NS  ns1.other.test.
sec     DS  12345 13 2 8b2a6b1e0d8a1f3c5e7d9b0a2c4e6f8a1b3d5f7e9c0b2d4f6a8c0e2b4d6f8a0c
"""


def keygen(keydir, *args):
    """ldns-keygen in keydir; returns the base name (K<zone>.+alg+tag)."""
    os.makedirs(keydir, exist_ok=True)
    r = subprocess.run(["ldns-keygen", *args, ORIGIN], cwd=keydir, capture_output=True,
                       text=True, check=True)
    return r.stdout.strip()


def make_keys(daemons, csk=False):
    keydir = os.path.join(daemons.dir, "keys")
    if csk:
        ksk = keygen(keydir, "-a", "ED25519", "-k")
    else:
        ksk = keygen(keydir, "-a", "ECDSAP256SHA256", "-k")
        keygen(keydir, "-a", "ECDSAP256SHA256")
    ds = subprocess.run(["ldns-key2ds", "-n", "-2", os.path.join(keydir, ksk + ".key")],
                        capture_output=True, text=True, check=True).stdout.strip()
    return keydir, ds


def signed_lb(daemons, agents=None, csk=False, members=H):
    keydir, ds = make_keys(daemons, csk)
    clusters = bu.cluster_conf(members, agents.port, failover="127.0.0.19") if agents else ""
    lb = bu.LB(daemons, clusters, zone_text=ZONE,
               zone_extra=f'allow-transfer {{ 127.0.0.1; }}; '
                          f'dnssec {{ key-directory "{keydir}"; }};')
    return lb, ds


class Unbound:
    """A validating Unbound on loopback, the zone stubbed to `port`."""

    def __init__(self, daemons, ds, port, name="unbound"):
        self.port = mxb.free_port()
        conf = daemons.write(f"{name}.conf", f"""server:
    interface: 127.0.0.1
    port: {self.port}
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: "{daemons.dir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    module-config: "validator iterator"
    trust-anchor: "{ds}"
    cache-max-ttl: 1
    cache-max-negative-ttl: 1
    qname-minimisation: no
    harden-referral-path: no
    local-zone: "test." nodefault
stub-zone:
    name: "{ORIGIN}"
    stub-addr: 127.0.0.1@{port}
""")
        self.d = daemons.start(name, ["unbound", "-d", "-c", conf],
                               ready=mxb.udp_bound("127.0.0.1", self.port))

    def ask(self, name, rdtype="A"):
        q = dns.message.make_query(name, rdtype, want_dnssec=True)
        q.flags |= dns.flags.AD | dns.flags.RD
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=5)


def secure(r):
    return bool(r.flags & dns.flags.AD)


def fqdn(label):
    return f"{label}.{ORIGIN}." if label else f"{ORIGIN}."


def check_validates(ub, cluster=True):
    r = ub.ask(fqdn("static"))
    assert r.rcode() == dns.rcode.NOERROR and secure(r), r
    assert [rd.address for rs in r.answer for rd in rs if rs.rdtype == dns.rdatatype.A] == \
        ["192.0.2.7"]
    r = ub.ask(fqdn("static"), "AAAA")
    assert secure(r) and r.answer, r
    r = ub.ask(fqdn("nope"))
    assert r.rcode() == dns.rcode.NXDOMAIN and secure(r), r
    r = ub.ask(fqdn("a.b.c.nope"), "TXT")
    assert r.rcode() == dns.rcode.NXDOMAIN and secure(r), r
    r = ub.ask(fqdn("static"), "TXT")  # NODATA
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and secure(r), r
    r = ub.ask(fqdn("nt"))  # an empty non-terminal
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and secure(r), r
    r = ub.ask(fqdn(""), "MX")
    assert secure(r) and r.answer, r
    r = ub.ask(fqdn(""), "DNSKEY")
    assert secure(r) and r.answer, r
    r = ub.ask(fqdn("sec"), "DS")  # the signed DS of a secure delegation
    assert secure(r) and r.answer, r
    r = ub.ask(fqdn("sub"), "DS")  # no DS: proven by the NSEC at the cut
    assert r.rcode() == dns.rcode.NOERROR and not r.answer and secure(r), r
    for t in ("CDS", "CDNSKEY"):
        r = ub.ask(fqdn(""), t)
        assert secure(r) and r.answer, (t, r)
    if cluster:
        r = ub.ask(fqdn("smtp"))
        assert r.rcode() == dns.rcode.NOERROR and secure(r), r


def test_static_and_denial_validate_at_unbound(daemons):
    lb, ds = signed_lb(daemons)
    ub = Unbound(daemons, ds, lb.port)
    check_validates(ub, cluster=False)
    # DO=0 gets the unsigned answer, DO=1 the RRSIGs.
    plain = lb.ask("static." + ORIGIN)
    assert not any(rs.rdtype == dns.rdatatype.RRSIG for rs in plain.answer)
    q = dns.message.make_query(fqdn("static"), "A", want_dnssec=True)
    r = dns.query.udp(q, "127.0.0.1", port=lb.port, timeout=3)
    assert any(rs.rdtype == dns.rdatatype.RRSIG for rs in r.answer), r


def test_ed25519_csk(daemons):
    lb, ds = signed_lb(daemons, csk=True)
    assert " 15 2 " in ds
    ub = Unbound(daemons, ds, lb.port)
    check_validates(ub, cluster=False)


def test_cluster_failover_validates(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb, ds = signed_lb(daemons, agents)
    lb.wait_set([H[2], H[1]], 10)
    ub = Unbound(daemons, ds, lb.port)
    check_validates(ub)
    r = ub.ask(fqdn("smtp"))
    assert {rd.address for rs in r.answer for rd in rs if rs.rdtype == dns.rdatatype.A} == \
        {H[2], H[1]}
    # Round robin changes the order, never the signature.
    q = dns.message.make_query(fqdn("smtp"), "A", want_dnssec=True)
    sigs = set()
    for _ in range(4):
        a = dns.query.udp(q, "127.0.0.1", port=lb.port, timeout=3)
        sigs |= {rd.signature for rs in a.answer if rs.rdtype == dns.rdatatype.RRSIG
                 for rd in rs}
    assert len(sigs) == 1
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], 15)

    def fresh():
        a = ub.ask(fqdn("smtp"))
        got = {rd.address for rs in a.answer for rd in rs if rs.rdtype == dns.rdatatype.A}
        return secure(a) and got == {H[1], H[0]}
    mxb.wait_until(fresh, 10, "the failover answer validated at Unbound")


def axfr_text(port):
    r = subprocess.run(["dig", "+nocmd", "+nostats", "+onesoa", "AXFR", ORIGIN,
                        "@127.0.0.1", "-p", str(port)], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_axfr_verifies_and_delv_agrees(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50})
    lb, ds = signed_lb(daemons, agents, members=H[:2])
    lb.wait_set([H[1], H[0]], 10)
    text = axfr_text(lb.port)
    assert " RRSIG " in text and " NSEC " in text and " DNSKEY " in text, text
    zf = daemons.write("axfr.zone", text)
    r = subprocess.run(["ldns-verify-zone", "-k", daemons.write("ds", ds + "\n"), zf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    # A broken copy fails: the test can fail.
    bad = re.sub(r"(\sA\s+192\.0\.2\.)7\b", r"\g<1>8", text)
    assert bad != text
    r = subprocess.run(["ldns-verify-zone", daemons.write("bad.zone", bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0, r.stdout
    # delv, validating against the zone's DS on its own.
    m = ds.split()
    i = m.index("DS")
    anchors = daemons.write("anchors", f'trust-anchors {{ {m[0]} static-ds {m[i + 1]} '
                                       f'{m[i + 2]} {m[i + 3]} "{"".join(m[i + 4:])}"; }};\n')
    for name, rdtype, want in (("smtp", "A", "fully validated"),
                               ("static", "A", "fully validated"),
                               ("nope", "A", "negative response, fully validated")):
        r = subprocess.run(["delv", "@127.0.0.1", "-p", str(lb.port), "-a", anchors,
                            f"+root={ORIGIN}", fqdn(name), rdtype], capture_output=True,
                           text=True, timeout=20)
        assert want in r.stdout + r.stderr, (name, r.stdout, r.stderr)


class TamperProxy:
    """UDP proxy to brokerd that flips a byte of every RRSIG signature in
    the answer section of replies about `target`."""

    def __init__(self, upstream, target):
        self.upstream = upstream
        self.target = target.lower()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.tampered = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(3)
            try:
                up.sendto(data, ("127.0.0.1", self.upstream))
                reply = up.recv(65535)
            except OSError:
                continue
            finally:
                up.close()
            self.sock.sendto(self._tamper(reply), peer)

    def _tamper(self, wire):
        msg = dns.message.from_wire(wire)
        if not msg.question or msg.question[0].name.to_text().lower() != self.target:
            return wire
        for rs in msg.answer:
            if rs.rdtype != dns.rdatatype.RRSIG:
                continue
            new = []
            for rd in rs:
                sig = bytearray(rd.signature)
                sig[len(sig) // 2] ^= 0x01
                new.append(rd.replace(signature=bytes(sig)))
            rs.clear()
            for rd in new:
                rs.add(rd)
            self.tampered += 1
        return msg.to_wire(max_size=65535)


def test_tampered_rrsig_is_bogus(daemons):
    lb, ds = signed_lb(daemons)
    proxy = TamperProxy(lb.port, fqdn("static"))
    try:
        ub = Unbound(daemons, ds, proxy.port)
        r = ub.ask(fqdn("txt"), "TXT")
        assert secure(r), r  # untouched answers still validate
        r = ub.ask(fqdn("static"))
        assert r.rcode() == dns.rcode.SERVFAIL, r
        assert proxy.tampered > 0
    finally:
        proxy.sock.close()


def test_config_errors(daemons):
    keydir = os.path.join(daemons.dir, "keys")
    zf = daemons.write("z.zone", ZONE)
    conf = daemons.write("t.conf", f'options {{ directory "{daemons.dir}"; }};\n'
                         f'broker {{ zone "{ORIGIN}" {{ file "{zf}"; '
                         f'dnssec {{ key-directory "{keydir}"; }}; }}; }};\n')
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode != 0 and keydir in r.stderr, r.stderr
    keygen(keydir, "-a", "ECDSAP256SHA256")  # a ZSK alone
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode != 0 and "no KSK" in r.stderr, r.stderr
    keygen(keydir, "-a", "ECDSAP256SHA256", "-k")
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode == 0, r.stderr
    daemons.write("z.zone", ZONE + "*.wild A 192.0.2.1\n")
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode != 0 and "wildcard *.wild.mail.example.test. is not supported" in \
        r.stderr, r.stderr


NAMES = ["", "ns1", "smtp", "static", "txt", "e.nt", "nt", "x.e.nt", "sub", "host.sub",
         "ns.sub", "sec", "www.sec", "nope", "a.b.nope", "zzz", "0", "_status.smtp"]
# ANY is left out: RFC 8482 lets each server pick its one RRset.
TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "DS", "DNSKEY", "NSEC", "CDS", "CDNSKEY",
         "RRSIG"]


def soa_serial(port):
    try:
        q = dns.message.make_query(fqdn(""), "SOA")
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
        return r.answer[0][0].serial if r.answer else None
    except Exception:
        return None


def test_nsd_secondary_validates_and_answers_alike(daemons):
    """NSD takes the signed zone by AXFR: Unbound validates NSD's answers,
    and brokerd's DO answers equal NSD's (pre-signed zone, the reference)."""
    lb, ds = signed_lb(daemons)
    nsd_port = mxb.free_port()
    d = os.path.join(daemons.dir, "nsd")
    os.makedirs(d)
    conf = daemons.write("nsd/nsd.conf", nsd_server_conf(d, nsd_port) + f"""zone:
  name: {ORIGIN}
  zonefile: "{d}/{ORIGIN}.zone"
  request-xfr: AXFR 127.0.0.1@{lb.port} NOKEY
""")
    daemons.start("nsd", ["nsd", "-d", "-c", conf], timeout=20,
                  ready=lambda: soa_serial(nsd_port) == lb.serial())
    ub = Unbound(daemons, ds, nsd_port)
    check_validates(ub, cluster=False)

    def ask(port, name, rdtype):
        q = dns.message.make_query(fqdn(name), rdtype, want_dnssec=True, payload=1232)
        q.flags &= ~dns.flags.RD
        r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
        return (dns.rcode.to_text(r.rcode()), bool(r.flags & dns.flags.AA),
                rrsets(r.answer), rrsets(r.authority))
    diffs = []
    for name in NAMES:
        for rdtype in TYPES:
            ours, theirs = ask(lb.port, name, rdtype), ask(nsd_port, name, rdtype)
            if ours != theirs:
                diffs.append(f"{name or '@'} {rdtype}:\n  brokerd {ours}\n  nsd     {theirs}")
    assert not diffs, f"{len(diffs)} differ:\n" + "\n".join(diffs[:6])


def test_signing_moves_no_serial(daemons):
    """Restarts and reloads sign again (new ECDSA signatures) but serve the
    same serial: the digest leaves the signatures out."""
    import signal
    lb, ds = signed_lb(daemons)
    serial = lb.serial()

    def soa_sig():
        q = dns.message.make_query(fqdn(""), "SOA", want_dnssec=True)
        r = dns.query.udp(q, "127.0.0.1", port=lb.port, timeout=3)
        return [rd.signature for rs in r.answer if rs.rdtype == dns.rdatatype.RRSIG
                for rd in rs][0]
    before = soa_sig()
    lb.d.stop()
    lb.start()
    assert lb.serial() == serial
    assert soa_sig() != before  # signed again, not a cached copy
    lb.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: "reload" in lb.d.log(), 10, "the reload")
    assert lb.serial() == serial
    ub = Unbound(daemons, ds, lb.port)
    check_validates(ub, cluster=False)


def test_knot_secondary_follows_brokered_answers(daemons):
    """Knot takes the signed zone over TSIG, follows a signed NOTIFY by IXFR
    after a failover, and its copy of the new answer validates at Unbound:
    signing, TSIG and the IXFR journal together."""
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    kport = mxb.free_port()
    keydir, ds = make_keys(daemons)
    secret = base64.b64encode(os.urandom(32)).decode()
    key = f'key "xfr" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port) + key,
               zone_text=ZONE,
               zone_extra=f'allow-transfer {{ 127.0.0.1 key "xfr"; }}; '
                          f'also-notify {{ 127.0.0.1 port {kport} key "xfr"; }}; '
                          f'dnssec {{ key-directory "{keydir}"; }};')
    lb.wait_set([H[2], H[1]], 10)
    d = os.path.join(daemons.dir, "knot")
    os.makedirs(d)
    conf = daemons.write("knot/knot.conf", knot_server_conf(d, kport, "db") + f"""key:
  - id: xfr
    algorithm: hmac-sha256
    secret: {secret}
remote:
  - id: primary
    address: 127.0.0.1@{lb.port}
    key: xfr
acl:
  - id: notify
    address: 127.0.0.1
    key: xfr
    action: notify
template:
  - id: default
    storage: "{d}"
zone:
  - domain: {ORIGIN}
    master: primary
    acl: notify
""")
    knot = daemons.start("knot", ["knotd", "-c", conf], timeout=20,
                         ready=lambda: soa_serial(kport) == lb.serial())
    ub = Unbound(daemons, ds, kport)
    check_validates(ub)
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], 15)

    def fresh():
        a = ub.ask(fqdn("smtp"))
        got = {rd.address for rs in a.answer for rd in rs if rs.rdtype == dns.rdatatype.A}
        return secure(a) and got == {H[1], H[0]}
    mxb.wait_until(fresh, 15, "Knot's copy of the failover answer validated at Unbound")
    assert re.search(rf"IXFR of {ORIGIN} serial \d+ to {lb.serial()} .* key xfr", lb.d.log())
    assert re.search(rf"\[{re.escape(ORIGIN)}\.\] IXFR, incoming.*finished", knot.log()), \
        knot.log()[-3000:]
    check_validates(ub)

def sig_shape(section):
    """rrsets() with each RRSIG reduced to what does not depend on the
    signing moment: type covered, algorithm, labels, original TTL, key tag,
    signer."""
    out = set()
    for rs in section:
        if rs.rdtype == dns.rdatatype.RRSIG:
            rds = tuple(sorted(f"{dns.rdatatype.to_text(rd.type_covered)} {rd.algorithm} "
                               f"{rd.labels} {rd.original_ttl} {rd.key_tag} {rd.signer}"
                               for rd in rs))
        else:
            rds = tuple(sorted(rd.to_text() for rd in rs))
        out.add((rs.name.to_text().lower(), rs.ttl, dns.rdatatype.to_text(rs.rdtype), rds))
    return out


def test_same_answers_as_knot_onlinesign(daemons):
    """Knot's mod-onlinesign with the same zone file and the same keys: the
    answer sections of positive answers are equal apart from signature bytes
    and times; denial differs by design (Knot: online NSEC per name)."""
    lb, ds = signed_lb(daemons)
    keydir = os.path.join(daemons.dir, "keys")
    kport = mxb.free_port()
    d = os.path.join(daemons.dir, "knot")
    os.makedirs(os.path.join(d, "db"))
    zf = daemons.write("knot/zone", ZONE)
    conf = daemons.write("knot/knot.conf", f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{kport}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
policy:
  - id: imported
    manual: on
    algorithm: ecdsap256sha256
mod-onlinesign:
  - id: os
    policy: imported
zone:
  - domain: {ORIGIN}
    file: "{zf}"
    module: mod-onlinesign/os
""")
    for f in sorted(os.listdir(keydir)):
        if f.endswith(".private"):
            r = subprocess.run(["keymgr", "-c", conf, ORIGIN, "import-bind",
                                os.path.join(keydir, f)], capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
    daemons.start("knot", ["knotd", "-c", conf], timeout=20,
                  ready=lambda: soa_serial(kport) is not None)

    def ask(port, name, rdtype):
        q = dns.message.make_query(fqdn(name), rdtype, want_dnssec=True, payload=1232)
        q.flags &= ~dns.flags.RD
        r = dns.query.tcp(q, "127.0.0.1", port=port, timeout=3)
        return dns.rcode.to_text(r.rcode()), sig_shape(r.answer)
    diffs = []
    compared = 0
    for name, rdtype in (("", "SOA"), ("", "NS"), ("", "MX"), ("", "DNSKEY"), ("ns1", "A"),
                         ("smtp", "A"), ("static", "A"), ("static", "AAAA"), ("txt", "TXT"),
                         ("e.nt", "A")):
        ours, theirs = ask(lb.port, name, rdtype), ask(kport, name, rdtype)
        assert ours[0] == "NOERROR" and {t for _, _, t, _ in ours[1]} == {rdtype, "RRSIG"}, \
            (name, rdtype, ours)
        compared += 1
        if ours != theirs:
            diffs.append(f"{name or '@'} {rdtype}:\n  brokerd {ours}\n  knot    {theirs}")
    assert compared == 10 and not diffs, "\n".join(diffs)
    # Both deny the name, each in its own style, and both validate: brokerd
    # NXDOMAIN from its chain, Knot NOERROR/NODATA ("black lies").
    for port, rcode in ((lb.port, dns.rcode.NXDOMAIN), (kport, dns.rcode.NOERROR)):
        ub = Unbound(daemons, ds, port, name=f"unbound-{port}")
        r = ub.ask(fqdn("nope"))
        assert r.rcode() == rcode and not r.answer and secure(r), r
