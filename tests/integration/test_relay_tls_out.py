"""Outbound STARTTLS: smtp-relayd delivers to a private Postfix smtpd
offering STARTTLS with a certificate from a test CA (made here with the
openssl CLI), by per-destination policy: may (opportunistic), verify
(chain and MX host name), encrypt to a next hop without STARTTLS
(deferred, nothing sent)."""
import re

import pytest

import mxb
import resolver_util as ru
from delivery_util import DeliveryRelay, Sink, parse, send
from relay_util import PrivatePostfix
from tls_util import CA, postfix_tls_extra

PF, PLAIN, FINAL, BROKEN = "127.0.0.43", "127.0.0.41", "127.0.0.42", "127.0.0.46"

ZONE = f"""
@         MX 10 mx
mx        A {PF}
may       MX 10 mx
wrong     MX 10 other
other     A {PF}
plain     MX 10 plainmx
plainmx   A {PLAIN}
none      MX 10 mx
broken    MX 10 brokenmx
brokenmx  A {BROKEN}
encbroken MX 10 brokenmx
"""


class BrokenTlsSink(Sink):
    """Offers STARTTLS, says 220, then answers the ClientHello with bytes
    that are no TLS record and hangs up: a handshake that fails."""

    def __init__(self, host, port):
        self.starttls = 0
        super().__init__(host, port)

    def _ehlo(self, out):
        for line in ("250-sink.test", "250-STARTTLS", "250 8BITMIME"):
            out(line)

    def _commands(self, f, out):
        sink = self

        class Reader:
            def readline(self):
                raw = f.readline()
                if raw[:8].upper() == b"STARTTLS":
                    sink.starttls += 1
                    out("220 2.0.0 ready")
                    out("this is not a TLS record")
                    raise ValueError("no TLS here")
                return raw

        Sink._commands(self, Reader(), out)


class World:
    def __init__(self, daemons, extra=""):
        self.ca = CA()
        cert, key = self.ca.server("mx.tls.test")
        self.port = mxb.free_port()
        self.final = Sink(FINAL, mxb.free_port())
        self.pf = PrivatePostfix(daemons, f"[{FINAL}]:{self.final.port}", port=self.port, host=PF,
                                 extra=postfix_tls_extra(cert, key))
        self.plain = Sink(PLAIN, self.port)  # no STARTTLS
        self.broken = BrokenTlsSink(BROKEN, self.port)
        self.dns = ru.start_nsd(daemons, {"tls.test": ru.zone_text("tls.test", ZONE)})
        self.relay = DeliveryRelay(
            daemons, self.dns, zones=("tls.test",),
            extra=f"remote-port {self.port}; retry-interval 1h; "
                  f'tls-ca-file "{self.ca.cert}"; '
                  'tls-policy "tls.test" verify; tls-policy "wrong.tls.test" verify; '
                  'tls-policy "plain.tls.test" encrypt; tls-policy "none.tls.test" none; '
                  'tls-policy "encbroken.tls.test" encrypt; '
                  f"{extra}")

    def close(self):
        print("---- smtp-relayd log\n" + self.relay_log()[-6000:])
        print("---- postfix log\n" + self.pf.log()[-6000:])
        self.final.close()
        self.plain.close()
        self.broken.close()
        self.pf.stop()
        self.ca.close()

    def relay_log(self):
        return self.relay.d.log()

    def wait_log(self, pattern, what):
        mxb.wait_until(lambda: re.search(pattern, self.relay_log()), 30, what,
                       proc=self.relay.d.proc)
        return re.search(pattern, self.relay_log())


@pytest.fixture
def world(daemons):
    w = World(daemons)
    yield w
    w.close()


def tls_metrics(w):
    text = mxb.http_get("127.0.0.1", w.relay.status_port, "/metrics")[2]
    return {m[0]: int(m[1]) for m in re.findall(
        r'mxbroker_relay_deliveries_tls_total\{outcome="(\w+)"\} (\d+)', text)}


def test_verify_delivers_over_tls_to_postfix(world):
    send(world.relay, "alice@sender.test", ["bob@tls.test"], subject="verified")
    msgs = world.final.wait_messages(1, timeout=40)
    m = parse(msgs[0]["data"])
    received = " ".join(m.get_all("Received"))
    # Postfix's smtpd records that smtp-relayd came in over TLS.
    assert "with ESMTPS" in received and "TLSv1.3" in received, received
    assert re.search(r"TLS connection established from \S+\[127\.0\.0\.1\]", world.pf.log())
    line = world.wait_log(r"to=<bob@tls\.test>.* result=delivered .* tls=verified \(TLSv1\.\d \S+\)",
                          "a delivery line with tls=verified")
    assert line
    assert tls_metrics(world)["verified"] == 1


def test_may_is_opportunistic(world):
    send(world.relay, "alice@sender.test", ["bob@may.tls.test"], subject="may")
    msgs = world.final.wait_messages(1, timeout=40)
    assert "with ESMTPS" in " ".join(parse(msgs[0]["data"]).get_all("Received"))
    world.wait_log(r"to=<bob@may\.tls\.test>.* result=delivered .* tls=opportunistic \(TLS",
                   "a delivery line with tls=opportunistic")
    assert tls_metrics(world)["opportunistic"] == 1


def test_none_stays_plaintext(world):
    send(world.relay, "alice@sender.test", ["bob@none.tls.test"], subject="none")
    msgs = world.final.wait_messages(1, timeout=40)
    received = " ".join(parse(msgs[0]["data"]).get_all("Received"))
    assert "with ESMTP id" in received and "ESMTPS" not in received, received
    world.wait_log(r"to=<bob@none\.tls\.test>.* result=delivered .* tls=none:",
                   "a delivery line with tls=none")


def test_verify_wrong_name_is_deferred(world):
    send(world.relay, "alice@sender.test", ["bob@wrong.tls.test"], subject="wrong name")
    line = world.wait_log(r"to=<bob@wrong\.tls\.test>.* result=deferred .*", "a deferral")
    assert "TLS required by policy verify but the certificate did not verify" in line.group(0)
    assert "tls=failed" in line.group(0)
    # Nothing went on in plaintext: no mail reached Postfix.
    assert world.final.messages == []
    assert not re.search(r"postfix/smtpd.*: [0-9A-F]+: client=", world.pf.log())
    (qid,) = world.relay.queue_ids()
    assert "did not verify" in world.relay.wait_attempted(qid)["last_error"]
    assert tls_metrics(world)["failed"] == 1


def test_encrypt_without_starttls_is_deferred_nothing_sent(world):
    send(world.relay, "alice@sender.test", ["bob@plain.tls.test"], subject="encrypt")
    line = world.wait_log(r"to=<bob@plain\.tls\.test>.* result=deferred .*", "a deferral")
    assert "TLS required by policy encrypt but the peer does not offer STARTTLS" in \
        line.group(0)
    assert world.plain.connections >= 1 and world.plain.messages == []


def test_wrong_ca_is_deferred(daemons):
    other = CA(name="another CA")
    w = World(daemons, extra="")
    try:
        # The relay trusts a different CA: verify fails, nothing is sent.
        w.relay.reload(w.relay.extra.replace(w.ca.cert, other.cert))
        w.wait_log(r"reload: configuration reloaded", "the reload")
        send(w.relay, "alice@sender.test", ["bob@tls.test"], subject="wrong CA")
        line = w.wait_log(r"to=<bob@tls\.test>.* result=deferred .*", "a deferral")
        assert "did not verify" in line.group(0)
        assert w.final.messages == []
    finally:
        w.close()
        other.close()


def test_check_reports_bad_tls_files(tmp_path):
    """-t: a CA file without a certificate and a policy file with a bad
    level are errors that name the file (and the line)."""
    import subprocess
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    pol = tmp_path / "policy"
    pol.write_text("ok.test verify\nbad.test sometimes\n")
    conf = tmp_path / "r.conf"
    conf.write_text(f'options {{ directory "{tmp_path}"; }};\n'
                    f'relay {{ listen 127.0.0.1 port {mxb.free_port()}; hostname "r.test"; '
                    f'tls-ca-file "{ca}"; tls-policy-file "{pol}"; }};\n')
    r = subprocess.run([mxb.binary("smtp-relayd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert f"relay: tls-ca-file {ca}:" in r.stderr, r.stderr
    assert f"{pol}:2: unknown level 'sometimes'" in r.stderr, r.stderr
    pol.write_text("ok.test verify\n")
    good = CA()
    with open(good.cert) as f:
        ca.write_text(f.read())
    good.close()
    r = subprocess.run([mxb.binary("smtp-relayd"), "-t", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    assert "tls-" not in r.stderr, r.stderr


def test_may_handshake_failure_retries_in_plaintext(world):
    send(world.relay, "alice@sender.test", ["bob@broken.tls.test"], subject="broken tls")
    msgs = world.broken.wait_messages(1, timeout=40)
    assert world.broken.starttls == 1 and len(msgs) == 1
    world.wait_log(r"brokenmx\.tls\.test\[127\.0\.0\.46\]: .*TLS handshake failed.*: "
                   r"retrying in plaintext", "the plaintext retry")
    world.wait_log(r"to=<bob@broken\.tls\.test>.* result=delivered .* tls=none:",
                   "delivered in plaintext")


def test_encrypt_handshake_failure_defers(world):
    send(world.relay, "alice@sender.test", ["bob@encbroken.tls.test"], subject="enc broken")
    line = world.wait_log(r"to=<bob@encbroken\.tls\.test>.* result=deferred .*",
                          "deferred").group(0)
    assert "TLS required by policy encrypt but TLS handshake failed" in line, line
    assert world.broken.starttls >= 1 and world.broken.messages == []
    assert "retrying in plaintext" not in world.relay_log()


def test_kept_connections_are_keyed_by_tls_level(daemons):
    """A connection kept after a verify delivery is reused for the next
    verify message to the same MX, never for a may one (same MX, same
    address, another TLS level)."""
    w = World(daemons, extra="connection-reuse-time 30s;")
    try:
        send(w.relay, "alice@sender.test", ["bob@tls.test"], subject="first")
        w.wait_log(r"to=<bob@tls\.test>.* result=delivered .* tls=verified", "first")
        send(w.relay, "alice@sender.test", ["carol@may.tls.test"], subject="second")
        w.wait_log(r"to=<carol@may\.tls\.test>.* result=delivered .* tls=opportunistic",
                   "second")
        assert "reusing connection" not in w.relay_log()
        send(w.relay, "alice@sender.test", ["dave@tls.test"], subject="third")
        w.wait_log(r"to=<dave@tls\.test>.* result=delivered .* tls=verified", "third")
        assert re.search(r"reusing connection to mx\.tls\.test\[127\.0\.0\.43\]:\d+ \(use 2\)",
                         w.relay_log())
        assert len(re.findall(r"TLS connection established", w.pf.log())) == 2
    finally:
        w.close()
