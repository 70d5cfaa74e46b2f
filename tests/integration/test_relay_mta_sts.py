"""MTA-STS in delivery (RFC 8461), against real peers: NSD serves MX, A
and _mta-sts TXT records, nginx serves the policies over HTTPS with
certificates from a test CA, and a private Postfix smtpd with STARTTLS (a
certificate for mx.sts.test from the same CA) is the MX of every domain;
it relays what it accepts to a sink.

enf.sts.test publishes enforce with a matching MX: delivered, verified,
logged sts=enforce.  bad.sts.test publishes enforce without a matching
MX: deferred with the MTA-STS reason, nothing reaches Postfix.
tst.sts.test publishes testing without a matching MX: delivered, and the
would-have-failed line is logged.  Messages carry the domains in several
orders (the enforce one first, in the middle, last).  The policy cache
survives a restart with nginx stopped: enforce is still applied.  A
domain whose level the operator set (tls-policy) is not looked up."""
import os
import re

import pytest

import mxb
import resolver_util as ru
from delivery_util import DeliveryRelay, Sink, send
from relay_util import PrivatePostfix
from tls_util import CA, postfix_tls_extra, start_nginx

PF, FINAL = "127.0.0.53", "127.0.0.52"

POLICIES = {
    "enf.sts.test": "version: STSv1\r\nmode: enforce\r\nmx: mx.sts.test\r\nmax_age: 86400\r\n",
    "bad.sts.test": "version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n",
    "tst.sts.test": "version: STSv1\nmode: testing\nmx: other.sts.test\nmax_age: 86400\n",
    "op.sts.test": "version: STSv1\nmode: enforce\nmx: other.sts.test\nmax_age: 86400\n",
    # MX other.sts.test: the same Postfix, whose certificate names mx.sts.test.
    "enfcert.sts.test": "version: STSv1\nmode: enforce\nmx: other.sts.test\nmax_age: 600\n",
    "tstcert.sts.test": "version: STSv1\nmode: testing\nmx: other.sts.test\nmax_age: 600\n",
}
# A TXT record but no policy on the web server (404): tempfail.
NO_POLICY = ("tmp.sts.test",)


def zone():
    body = f"mx A {PF}\nother A {PF}\n"
    for dom in (*POLICIES, *NO_POLICY):
        label = dom[: -len(".sts.test")]
        body += (f"{label} MX 10 {'other' if 'cert' in label else 'mx'}\n"
                 f'_mta-sts.{label} TXT "v=STSv1; id=20261202a;"\n'
                 f"mta-sts.{label} A 127.0.0.1\n")
    return ru.zone_text("sts.test", body)


class World:
    def __init__(self, daemons):
        self.daemons = daemons
        self.dir = daemons.dir
        self.ca = CA()
        cert, key = self.ca.server("mx.sts.test")
        self.port = mxb.free_port()
        self.https_port = mxb.free_port()
        self.final = Sink(FINAL, mxb.free_port())
        self.pf = PrivatePostfix(daemons, f"[{FINAL}]:{self.final.port}", port=self.port,
                                 host=PF, extra=postfix_tls_extra(cert, key))
        self.dns = ru.start_nsd(daemons, {"sts.test": zone()})
        self.nginx = None
        self.start_https()
        self.relay = DeliveryRelay(
            daemons, self.dns, zones=("sts.test",),
            extra=f"remote-port {self.port}; retry-interval 1h; "
                  f'tls-ca-file "{self.ca.cert}"; mta-sts yes; '
                  f'mta-sts-ca-file "{self.ca.cert}"; mta-sts-port {self.https_port}; '
                  f'mta-sts-cache "{self.dir}/sts-cache"; '
                  'tls-policy "op.sts.test" may;')

    def start_https(self):
        d = self.dir
        servers = []
        for dom, text in POLICIES.items():
            host = f"mta-sts.{dom}"
            cert, key = self.ca.server(host)
            self.daemons.write(f"www/{dom}/.well-known/mta-sts.txt", text)
            servers.append(
                f"server {{ listen 127.0.0.1:{self.https_port} ssl; server_name {host};\n"
                f"  ssl_certificate {cert}; ssl_certificate_key {key};\n"
                f"  root {d}/www/{dom}; }}\n")
        self.nginx = start_nginx(self.daemons, d, self.https_port, servers)

    def close(self):
        print("---- smtp-relayd log\n" + self.log()[-8000:])
        print("---- postfix log\n" + self.pf.log()[-4000:])
        self.final.close()
        self.pf.stop()
        self.ca.close()

    def log(self):
        return self.relay.d.log()

    def wait_log(self, pattern, what, timeout=40):
        mxb.wait_until(lambda: re.search(pattern, self.log()), timeout, what,
                       proc=self.relay.d.proc)
        return re.search(pattern, self.log()).group(0)

    def metrics(self):
        text = mxb.http_get("127.0.0.1", self.relay.status_port, "/metrics")[2]
        return {m[0]: int(m[1]) for m in re.findall(
            r'mxbroker_relay_mta_sts_total\{result="(\w+)"\} (\d+)', text)}

    def received_rcpts(self):
        return sorted(r for m in self.final.messages for r in m["rcpts"])


@pytest.fixture
def world(daemons):
    w = World(daemons)
    yield w
    w.close()


# The enforce domain first, in the middle, last; with the others around it.
ORDERS = [("enf", "tst", "bad"), ("bad", "enf", "tst"), ("tst", "bad", "enf")]


def test_enforce_testing_and_mismatch_in_one_message(world):
    for n, order in enumerate(ORDERS):
        rcpts = [f"u{n}@{label}.sts.test" for label in order]
        send(world.relay, "alice@sender.test", rcpts, subject=f"order {n}")
        for label, result in (("enf", "delivered"), ("tst", "delivered"), ("bad", "deferred")):
            world.wait_log(rf"to=<u{n}@{label}\.sts\.test>.* result={result} ",
                           f"u{n}@{label}: {result}")
    log = world.log()
    # enforce + matching MX: verified TLS to the MX name, sts=enforce.
    for n in range(3):
        line = re.search(rf"to=<u{n}@enf\.sts\.test>.*", log).group(0)
        assert "hop=mx.sts.test" in line and "tls=verified (TLS" in line, line
        assert "sts=enforce" in line, line
        # enforce + no matching MX: deferred, the reason names MTA-STS and the MX.
        line = re.search(rf"to=<u{n}@bad\.sts\.test>.*", log).group(0)
        assert "MTA-STS enforce (policy id 20261202a): MX mx.sts.test does not match" in line
        assert "status=4.7.5" in line, line
        # testing: delivered as without a policy (may), sts=testing.
        line = re.search(rf"to=<u{n}@tst\.sts\.test>.*", log).group(0)
        assert "tls=opportunistic (TLS" in line and "sts=testing" in line, line
    assert re.search(r"tst\.sts\.test: mta-sts=testing: would have failed: MX mx\.sts\.test "
                     r"not in the policy", log)
    # Nothing for bad.sts.test ever reached Postfix.
    world.final.wait_messages(6, timeout=40)
    got = world.received_rcpts()
    assert not [r for r in got if r.endswith("@bad.sts.test")], got
    assert len([r for r in got if r.endswith("@enf.sts.test")]) == 3, got
    assert not re.search(r"bad\.sts\.test", world.pf.log())
    # The DSN-to-be (last error in the queue) says what failed.
    bad = [q for q in world.relay.queue_ids()]
    assert len(bad) == 3, bad
    for n, qid in enumerate(bad):
        err = world.relay.wait_attempted(qid, rcpt=f"u{n}@bad.sts.test")["last_error"]
        assert "MTA-STS enforce" in err, err
    m = world.metrics()
    assert m["enforce"] == 3 and m["testing"] == 3 and m["mx_mismatch"] == 3, m
    assert m["tempfail"] == 0, m


def test_operator_policy_wins_and_cache_survives_restart(world):
    # op.sts.test has an explicit tls-policy (may): MTA-STS is not consulted,
    # although its policy is enforce without a matching MX.
    send(world.relay, "alice@sender.test", ["o@op.sts.test", "e@enf.sts.test"], subject="op")
    line = world.wait_log(r"to=<o@op\.sts\.test>.* result=delivered .*", "op delivered")
    assert "sts=" not in line, line
    world.wait_log(r"to=<e@enf\.sts\.test>.* result=delivered .*sts=enforce", "enf delivered")
    send(world.relay, "alice@sender.test", ["b@bad.sts.test"], subject="bad")
    world.wait_log(r"to=<b@bad\.sts\.test>.* result=deferred .*MTA-STS enforce", "bad deferred")
    assert os.path.exists(os.path.join(world.dir, "sts-cache", "enf.sts.test.policy"))
    assert os.path.exists(os.path.join(world.dir, "sts-cache", "bad.sts.test.policy"))

    # Restart with nginx down: the cached policies (same id) still apply.
    world.nginx.stop()
    world.relay.d.stop()
    world.relay.start()
    before = world.final.messages[:]
    send(world.relay, "alice@sender.test", ["b2@bad.sts.test", "e2@enf.sts.test"],
         subject="after restart")
    line = world.wait_log(r"to=<b2@bad\.sts\.test>.* result=deferred .*", "bad deferred again")
    assert "MTA-STS enforce" in line, line
    line = world.wait_log(r"to=<e2@enf\.sts\.test>.* result=delivered .*", "enf delivered")
    assert "sts=enforce" in line and "tls=verified" in line, line
    assert "mta-sts=tempfail" not in world.log()
    world.final.wait_messages(len(before) + 1, timeout=40)
    assert not [r for r in world.received_rcpts() if r.endswith("@bad.sts.test")]


def test_certificate_checks_and_tempfail(world):
    """enforce: the MX name must be on the certificate (verify, deferred
    otherwise); testing: delivered, the certificate failure logged; a
    policy that cannot be fetched (tempfail) never defers."""
    send(world.relay, "alice@sender.test",
         ["c@tstcert.sts.test", "c@enfcert.sts.test", "c@tmp.sts.test"], subject="certs")
    line = world.wait_log(r"to=<c@enfcert\.sts\.test>.* result=deferred .*", "enfcert deferred")
    assert "sts=enforce" in line and "certificate did not verify" in line, line
    assert "status=4.7.5" in line and "MTA-STS enforce: " in line, line
    line = world.wait_log(r"to=<c@tstcert\.sts\.test>.* result=delivered .*", "tstcert delivered")
    assert "sts=testing" in line, line
    world.wait_log(r"mta-sts=testing: would have failed: other\.sts\.test\[127\.0\.0\.53\]: "
                   r"certificate not verified \(.*\)", "the certificate would-have-failed line")
    line = world.wait_log(r"to=<c@tmp\.sts\.test>.* result=delivered .*", "tmp delivered")
    assert "sts=" not in line, line
    # (nginx has no server for it: the default one's certificate is refused)
    assert re.search(r"tmp\.sts\.test: mta-sts=tempfail \(delivering as without a policy\): "
                     r"https://mta-sts\.tmp\.sts\.test/\S+: certificate", world.log())
    world.final.wait_messages(2, timeout=40)
    assert sorted(world.received_rcpts()) == ["c@tmp.sts.test", "c@tstcert.sts.test"]
    m = world.metrics()
    assert m["tempfail"] == 1 and m["testing"] == 1 and m["enforce"] == 1, m
