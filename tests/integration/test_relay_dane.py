"""DANE (RFC 7672) for outbound mail: a zone signed at test time with
ldns-signzone (keys from ldns-keygen -a ECDSAP256SHA256), served by NSD on
loopback; Unbound on loopback validates it with a trust anchor for the zone
(stub zones point at NSD); smtp-relayd uses Unbound with
`resolver { dnssec-validating yes; }` (default level: dane) and delivers to
a private Postfix smtpd with a certificate from a test CA.  Matching TLSA
3 1 1 -> delivered, logged dane; mismatching -> deferred, nothing sent; an
unsigned zone (even with a wrong TLSA) -> opportunistic."""
import os
import re
import subprocess

import pytest

import mxb
import resolver_util as ru
from conftest import require_tool
from delivery_util import DeliveryRelay, Sink, parse, send
from relay_util import PrivatePostfix
from tls_util import CA, postfix_tls_extra, spki_sha256

PF, FINAL = "127.0.0.44", "127.0.0.45"
WRONG = "00" * 32


def sign_zone(daemons, origin, text, bogus=None):
    """Keys (KSK + ZSK, ECDSA P-256) and the signed zone; returns (signed
    zone text, trust anchor file for Unbound)."""
    keygen, signzone = require_tool("ldns-keygen"), require_tool("ldns-signzone")
    d = os.path.join(daemons.dir, "keys-" + origin)
    os.makedirs(d)
    run = lambda *a: subprocess.run(a, cwd=d, capture_output=True, text=True, check=True,
                                    timeout=60).stdout.strip()
    ksk = run(keygen, "-a", "ECDSAP256SHA256", "-k", origin)
    zsk = run(keygen, "-a", "ECDSAP256SHA256", origin)
    zone = os.path.join(d, origin + ".zone")
    with open(zone, "w") as f:
        f.write(text)
    run(signzone, "-o", origin, zone, zsk, ksk)
    with open(zone + ".signed") as f:
        signed = f.read()
    if bogus:
        # Break the signature over one RRset: a validator answers SERVFAIL.
        out, broken = [], 0
        for line in signed.splitlines():
            w = line.split()
            if len(w) > 5 and w[0].startswith(bogus) and w[3] == "RRSIG" and w[4] == "TLSA":
                sig = w[-1]
                w[-1] = ("A" if sig[0] != "A" else "B") + sig[1:]
                line = "\t".join(w)
                broken += 1
            out.append(line)
        signed = "\n".join(out) + "\n"
        assert broken == 1, f"no RRSIG TLSA for {bogus} in the signed zone"
    return signed, os.path.join(d, ksk + ".key")


def start_unbound(daemons, nsd_port, anchor, stubs, insecure):
    unbound = require_tool("unbound")
    port = mxb.free_port()
    d = daemons.dir
    lines = [
        "server:",
        "    interface: 127.0.0.1",
        f"    port: {port}",
        "    do-daemonize: no",
        '    username: ""',
        '    chroot: ""',
        f'    directory: "{d}"',
        '    pidfile: ""',
        "    use-syslog: no",
        "    verbosity: 1",
        "    val-log-level: 2",
        "    do-ip6: no",
        "    do-not-query-localhost: no",
        "    access-control: 127.0.0.0/8 allow",
        "    qname-minimisation: no",
        "    cache-max-ttl: 0",
        "    cache-max-negative-ttl: 0",
        '    module-config: "validator iterator"',
        # Unbound serves test. itself by default (RFC 6761): ask NSD instead.
        '    local-zone: "test." nodefault',
        f'    trust-anchor-file: "{anchor}"',
    ] + [f'    domain-insecure: "{z}"' for z in insecure]
    for z in stubs:
        lines += ["stub-zone:", f'    name: "{z}"', f"    stub-addr: 127.0.0.1@{nsd_port}"]
    lines += ["remote-control:", "    control-enable: no"]
    conf = daemons.write("unbound.conf", "\n".join(lines) + "\n")
    r = subprocess.run([os.path.join(os.path.dirname(unbound), "unbound-checkconf"), conf],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    daemons.start("unbound", [unbound, "-d", "-c", conf],
                  ready=mxb.udp_bound("127.0.0.1", port), timeout=20)
    return port


class DaneRelay(DeliveryRelay):
    """The relay with resolver { dnssec-validating yes; } (Unbound)."""

    def config_text(self):
        return super().config_text().replace("    timeout 1s; attempts 1;\n",
                                             "    timeout 3s; attempts 1;\n"
                                             "    dnssec-validating yes;\n")


class World:
    def __init__(self, daemons):
        self.ca = CA()
        cert, key = self.ca.server("mx.dane.test")
        spki = spki_sha256(cert)
        self.port = mxb.free_port()
        self.final = Sink(FINAL, mxb.free_port())
        self.pf = PrivatePostfix(daemons, f"[{FINAL}]:{self.final.port}", port=self.port,
                                 host=PF, extra=postfix_tls_extra(cert, key))
        p = self.port
        signed, anchor = sign_zone(daemons, "dane.test", ru.zone_text("dane.test", f"""
@                MX 10 mx
mx               A {PF}
_{p}._tcp.mx     TLSA 3 1 1 {spki}
bad              MX 10 badmx
badmx            A {PF}
_{p}._tcp.badmx  TLSA 3 1 1 {WRONG}
unusable         MX 10 pkixmx
pkixmx           A {PF}
_{p}._tcp.pkixmx TLSA 1 1 1 {WRONG}
servfail         MX 10 sfmx
sfmx             A {PF}
_{p}._tcp.sfmx   TLSA 3 1 1 {spki}
"""), bogus=f"_{p}._tcp.sfmx.")
        plain = ru.zone_text("plain.test", f"""
@                MX 10 mx
mx               A {PF}
_{p}._tcp.mx     TLSA 3 1 1 {WRONG}
strict           MX 10 mx
""")
        self.nsd = ru.start_nsd(daemons, {"dane.test": signed, "plain.test": plain})
        self.unbound = start_unbound(daemons, self.nsd, anchor, ["dane.test", "plain.test"],
                                     ["plain.test"])
        # Unbound is declared a trusted validating resolver: DO set, AD
        # believed, default level dane.
        self.relay = DaneRelay(
            daemons, self.unbound, zones=("dane.test", "plain.test"),
            extra=f"remote-port {self.port}; retry-interval 1h; "
                  'tls-policy "strict.plain.test" dane-only;')

    def close(self):
        print("---- smtp-relayd log\n" + self.relay.d.log()[-8000:])
        print("---- postfix log\n" + "\n".join(
            l for l in self.pf.log().splitlines() if "overriding" not in l)[-6000:])
        self.final.close()
        self.pf.stop()
        self.ca.close()

    def log(self):
        return self.relay.d.log()

    def wait_log(self, pattern, what):
        mxb.wait_until(lambda: re.search(pattern, self.log()), 30, what,
                       proc=self.relay.d.proc)
        return re.search(pattern, self.log()).group(0)


@pytest.fixture
def world(daemons):
    w = World(daemons)
    yield w
    w.close()


def test_matching_tlsa_delivers_with_dane(world):
    send(world.relay, "alice@sender.test", ["bob@dane.test"], subject="dane ok")
    msgs = world.final.wait_messages(1, timeout=40)
    assert "with ESMTPS" in " ".join(parse(msgs[0]["data"]).get_all("Received"))
    line = world.wait_log(r"to=<bob@dane\.test>.* result=delivered .*", "delivered")
    assert "tls=dane (TLSv1." in line, line
    assert re.search(r"TLSA _\d+\._tcp\.mx\.dane\.test: answer, DNSSEC-secure \(1 usable of 1\)",
                     world.log())


def test_mismatching_tlsa_defers_nothing_sent(world):
    send(world.relay, "alice@sender.test", ["bob@bad.dane.test"], subject="dane bad")
    line = world.wait_log(r"to=<bob@bad\.dane\.test>.* result=deferred .*", "deferred")
    assert "TLS required by policy dane but TLSA did not match" in line, line
    assert "tls=failed" in line
    assert world.final.messages == []
    assert not re.search(r"postfix/smtpd.*: [0-9A-F]+: client=", world.pf.log())
    (qid,) = world.relay.queue_ids()
    rc = world.relay.wait_attempted(qid)
    assert "TLSA did not match" in rc["last_error"]


def test_only_unusable_tlsa_is_encrypt(world):
    send(world.relay, "alice@sender.test", ["bob@unusable.dane.test"], subject="pkix")
    world.final.wait_messages(1, timeout=40)
    line = world.wait_log(r"to=<bob@unusable\.dane\.test>.* result=delivered .*", "delivered")
    assert "tls=opportunistic (TLSv1." in line, line
    assert re.search(r"TLSA _\d+\._tcp\.pkixmx\.dane\.test: answer, DNSSEC-secure \(0 usable of 1\)",
                     world.log())


def test_unsigned_zone_is_opportunistic(world):
    send(world.relay, "alice@sender.test", ["bob@plain.test"], subject="unsigned")
    msgs = world.final.wait_messages(1, timeout=40)
    assert "with ESMTPS" in " ".join(parse(msgs[0]["data"]).get_all("Received"))
    line = world.wait_log(r"to=<bob@plain\.test>.* result=delivered .*", "delivered")
    # The (wrong) TLSA of an unsigned zone is never asked for, nor used.
    assert "tls=opportunistic (TLSv1." in line, line
    assert "TLSA _" not in world.log()


def test_bogus_tlsa_defers(world):
    """A TLSA lookup that fails (SERVFAIL: the signature is broken) under a
    secure MX defers the message (RFC 7672 §2.2.1): never plaintext, never
    opportunistic."""
    send(world.relay, "alice@sender.test", ["bob@servfail.dane.test"], subject="bogus")
    line = world.wait_log(r"to=<bob@servfail\.dane\.test>.* result=deferred .*", "deferred")
    assert "TLS required by policy dane but the TLSA lookup failed" in line, line
    assert re.search(r"TLSA _\d+\._tcp\.sfmx\.dane\.test: server failure \(SERVFAIL\)",
                     world.log())
    assert world.final.messages == []
    assert "TLS connection established" not in world.pf.log()


def test_dane_only_on_an_unsigned_domain_defers(world):
    send(world.relay, "alice@sender.test", ["bob@strict.plain.test"], subject="strict")
    line = world.wait_log(r"to=<bob@strict\.plain\.test>.* result=deferred .*", "deferred")
    assert "TLS required by policy dane-only but the MX or address answer was not " \
        "DNSSEC-secure" in line, line
    assert world.final.messages == []


def test_mxroute_explain_shows_the_tls_policy(world):
    """mxroute --explain with the relay's configuration: the domain's level
    and why, and what each hop gets given the DNSSEC state of its answers."""
    r = ru.mxroute(world.relay.conf, "--explain", "bob@dane.test", "bob@plain.test",
                   "bob@strict.plain.test")
    out = r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    assert "; DNS MX dane.test: records found (DNSSEC-secure)" in out, out
    assert "; tls: dane (default (resolver dnssec-validating: dane))" in out, out
    assert "; tls mx.dane.test: dane with usable TLSA (MX and address answers " \
        "DNSSEC-secure), else may" in out, out
    assert "; tls mx.plain.test: may (MX or address answers not DNSSEC-secure)" in out, out
    assert '; tls: dane-only (tls-policy "strict.plain.test")' in out, out
    assert "; tls mx.plain.test: deferred (MX or address answers not DNSSEC-secure)" in out
    rc, routes = ru.route(world.relay.conf, "bob@dane.test", "bob@plain.test")
    assert routes[0]["tls"]["level"] == "dane"
    assert routes[0]["tls"]["hops"][0]["dnssec"] is True
    assert routes[1]["tls"]["hops"][0] == {
        "host": "mx.plain.test", "dnssec": False,
        "level": "may (MX or address answers not DNSSEC-secure)"}


def test_socketmap_answers_smtp_tls_policy_maps(daemons, world):
    """mxroute --socketmap answers Postfix smtp_tls_policy_maps lookups
    (map name tlspolicy) from the relay's TLS policy."""
    postmap = require_tool("postmap")
    port = mxb.free_port()
    daemons.start("mxroute-socketmap",
                  [mxb.binary("mxroute"), "-c", world.relay.conf, "--socketmap",
                   f"127.0.0.1:{port}"], ready=mxb.tcp_open("127.0.0.1", port))
    pfdir = ru.write_postfix_dir(daemons)

    def q(key, table="tlspolicy"):
        return subprocess.run([postmap, "-c", pfdir, "-q", key,
                               f"socketmap:inet:127.0.0.1:{port}:{table}"],
                              capture_output=True, text=True, timeout=30)

    assert q("strict.plain.test").stdout.strip() == "dane-only"
    assert q("Dane.Test").stdout.strip() == "dane"      # the default with dnssec-validating
    assert q(".plain.test").returncode == 1               # parent-domain keys: not found
    # The routing map still answers on the same server.
    assert q("dane.test", "mxroute").stdout.strip() == f"smtp:[mx.dane.test]:{world.port}"
