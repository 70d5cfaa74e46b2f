"""smtp-relayd AUTH (RFC 4954, issue 17): PLAIN and LOGIN against a file of
crypt(3) hashes (yescrypt, bcrypt, sha512crypt), offered only over TLS on the
submission and smtps listeners; 538 in plaintext; 535 (delayed) for a bad
password, 421 after three failures from one address; an authenticated client
relays anywhere and is exempt from max-sessions-per-client.  Clients: swaks,
Python's smtplib and raw sockets, from 127.0.0.5 (not a trusted network)."""
import base64
import os
import re
import signal
import smtplib
import subprocess
import time
import warnings

import pytest

import mxb
from conftest import require_tool
from tls_util import CA, TlsSmtp, tls_block
from relay_util import Relay

CLIENT = "127.0.0.5"  # outside trusted-networks (127.0.0.1/32)
PASSWORD = "correct horse"


def hashes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    sha512 = subprocess.run([require_tool("openssl"), "passwd", "-6", PASSWORD],
                            capture_output=True, text=True, check=True).stdout.strip()
    return {
        "alice": crypt.crypt(PASSWORD, "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"),  # yescrypt
        "bob": crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5)),
        "carol": sha512,
    }


class AuthRelay:
    def __init__(self, daemons, tmp_path, extra=""):
        self.ca = CA(folder=str(tmp_path / "ca"))
        crt, key = self.ca.issue("srv")
        users = "# test users\n" + "".join(f"{u}:{h}\n" for u, h in hashes().items())
        self.auth_file = daemons.write("users.auth", users)
        self.sub = mxb.free_port()
        self.smtps = mxb.free_port()
        self.relay = Relay(daemons, extra=(
            tls_block(crt, key) + f'\nauth-file "{self.auth_file}";\n'
            f"submission-listen 127.0.0.1 port {self.sub};\n"
            f"smtps-listen 127.0.0.1 port {self.smtps};\n" + extra))

    def log(self):
        return self.relay.d.log()


@pytest.fixture
def ar(daemons, tmp_path):
    return AuthRelay(daemons, tmp_path)


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def sub_session(ar):
    c = TlsSmtp("127.0.0.1", ar.sub, source=CLIENT)
    c.cmd("EHLO client.test")
    c.starttls(ar.ca.context())
    code, text = c.cmd("EHLO client.test")
    assert code == 250 and "250-AUTH PLAIN LOGIN" in text
    return c


def test_smtplib_plain_relays_to_any_domain(ar):
    with smtplib.SMTP("127.0.0.1", ar.sub, timeout=20, source_address=(CLIENT, 0)) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth")  # no AUTH before TLS
        s.starttls(context=ar.ca.context())
        s.ehlo("client.test")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        # Without AUTH the client is nobody special: relaying is refused.
        s.mail("alice@client.test")
        code, text = s.rcpt("carol@outside.test")
        assert code == 550 and b"Relay access denied" in text
        s.rset()
        s.login("alice", PASSWORD)
        s.sendmail("alice@client.test", ["carol@outside.test"],
                   b"Subject: authenticated\r\n\r\nhello\r\n")
    mxb.wait_until(lambda: len(ar.relay.queue_ids()) == 1, 10, "the message")
    content = ar.relay.ctl_json("show", ar.relay.queue_ids()[0])["content"]
    assert re.search(r"\tby relay\.test \(mxbroker\) with ESMTPSA id ", content), content[:400]
    log = ar.log()
    assert re.search(r"client=unknown\[127\.0\.0\.5\], sasl_method=PLAIN, sasl_username=alice",
                     log), log
    assert PASSWORD not in log
    assert ar.relay.status()["counters"]["auth_successes"] == 1


def swaks(*args):
    return subprocess.run([require_tool("swaks"), "--from", "bob@client.test", "--helo",
                           "client.test", "--local-interface", CLIENT,
                           "--to", "dave@outside.test", *args],
                          capture_output=True, text=True, timeout=60)


def test_swaks_login_on_submission(ar):
    r = swaks("--server", f"127.0.0.1:{ar.sub}", "--tls", "--auth", "LOGIN",
              "--auth-user", "bob", "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    assert "sasl_method=LOGIN, sasl_username=bob" in ar.log()


def test_swaks_plain_on_smtps(ar):
    r = swaks("--server", f"127.0.0.1:{ar.smtps}", "--tls-on-connect", "--auth", "PLAIN",
              "--auth-user", "carol", "--auth-password", PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sasl_method=PLAIN, sasl_username=carol" in ar.log()


def test_plaintext_auth_is_refused_with_538(ar):
    c = TlsSmtp("127.0.0.1", ar.sub, source=CLIENT)
    code, text = c.cmd("EHLO client.test")
    assert code == 250 and "AUTH" not in text and "STARTTLS" in text
    code, text = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
    assert (code, text) == (538, "538 5.7.11 Encryption required for requested "
                                 "authentication mechanism")
    c.close()
    # Port 25 does not do AUTH at all without auth-on-listen, TLS or not.
    c = TlsSmtp("127.0.0.1", ar.relay.port, source=CLIENT)
    c.cmd("EHLO client.test")
    c.starttls(ar.ca.context())
    assert "AUTH" not in c.cmd("EHLO client.test")[1]
    assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))[0] == 502
    c.close()


def test_login_exchange_and_mail_auth_parameter(ar):
    c = sub_session(ar)
    assert c.cmd("AUTH LOGIN") == (334, "334 VXNlcm5hbWU6")
    assert c.cmd("*")[0] == 501  # cancelled
    assert c.cmd("AUTH LOGIN")[0] == 334
    assert c.cmd(b64("bob")) == (334, "334 UGFzc3dvcmQ6")
    assert c.cmd(b64(PASSWORD)) == (235, "235 2.7.0 Authentication successful")
    assert c.cmd("AUTH PLAIN " + plain("bob", PASSWORD))[0] == 503
    assert c.cmd("MAIL FROM:<bob@client.test> AUTH=<>")[0] == 250
    assert c.cmd("RCPT TO:<erin@outside.test>")[0] == 250
    c.close()
    # PLAIN without an initial response, and an authzid that is not the user.
    c = sub_session(ar)
    assert c.cmd("AUTH PLAIN") == (334, "334 ")
    assert c.cmd(plain("carol", PASSWORD))[0] == 235
    c.close()
    c = sub_session(ar)
    t = base64.b64encode(f"alice\0carol\0{PASSWORD}".encode()).decode()
    assert c.cmd("AUTH PLAIN " + t)[0] == 535
    c.close()


def test_bad_passwords_535_then_421(ar):
    c = sub_session(ar)
    for i in range(3):
        t0 = time.monotonic()
        code, text = c.cmd("AUTH PLAIN " + plain("alice", f"guess{i}"))
        assert (code, text) == (535, "535 5.7.8 Error: authentication failed")
        assert time.monotonic() - t0 >= 0.9  # each failure is answered after a pause
    code, text = c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))
    assert code == 421 and "too many failed authentications" in text
    c.close()
    # The address stays blocked for new connections, even with the right password.
    c = sub_session(ar)
    assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))[0] == 421
    c.close()
    log = ar.log()
    assert log.count("smtp: unknown[127.0.0.5]: SASL PLAIN authentication failed: "
                     "sasl_username=alice") == 3, log
    assert "guess" not in log and PASSWORD not in log
    st = ar.relay.status()["counters"]
    assert st["auth_failures"] == 3 and st["auth_blocked"] == 2
    # Another address is not affected.
    c = TlsSmtp("127.0.0.1", ar.sub, source="127.0.0.6")
    c.cmd("EHLO client.test")
    c.starttls(ar.ca.context())
    c.cmd("EHLO client.test")
    assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))[0] == 235
    c.close()


def test_unknown_user_fails_like_a_bad_password(ar):
    c = sub_session(ar)
    assert c.cmd("AUTH PLAIN " + plain("mallory", PASSWORD))[0] == 535
    # A name with control characters is not even checked.
    assert c.cmd("AUTH PLAIN " + plain("al\x01ice", PASSWORD))[0] == 501
    assert c.cmd("AUTH PLAIN !!!!")[0] == 501
    c.close()


def test_sighup_rereads_the_auth_file(ar):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    with open(ar.auth_file, "w") as f:
        f.write("frank:" + crypt.crypt("new pass", crypt.mksalt(crypt.METHOD_SHA512)) + "\n")
    ar.relay.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: ar.log().count(f"auth: {ar.auth_file}: 1 users") == 1, 10,
                   "the reload")
    c = sub_session(ar)
    assert c.cmd("AUTH PLAIN " + plain("alice", PASSWORD))[0] == 535
    assert c.cmd("AUTH PLAIN " + plain("frank", "new pass"))[0] == 235
    c.close()
    # A broken file keeps the running users.
    with open(ar.auth_file, "w") as f:
        f.write("grace:plaintext\n")
    ar.relay.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: "keeping the running users" in ar.log(), 10, "the refused reload")
    assert f"auth-file {ar.auth_file}:1: not a crypt(3) hash" in ar.log()
    c = sub_session(ar)
    assert c.cmd("AUTH PLAIN " + plain("frank", "new pass"))[0] == 235
    c.close()


def test_authenticated_sessions_are_exempt_from_the_per_client_limit(daemons, tmp_path):
    ar = AuthRelay(daemons, tmp_path, extra="max-sessions-per-client 1;")
    first = sub_session(ar)
    assert first.cmd("AUTH PLAIN " + plain("alice", PASSWORD))[0] == 235
    second = TlsSmtp("127.0.0.1", ar.sub, source=CLIENT)
    assert second.banner[0] == 220  # the authenticated session does not count
    third = TlsSmtp("127.0.0.1", ar.sub, source=CLIENT)
    assert third.banner[0] == 421  # the unauthenticated second one does
    for c in (first, second, third):
        c.close()


def check(daemons, extra):
    ca = CA(folder=os.path.join(daemons.dir, "ca-check"))
    crt, key = ca.issue("srv")
    conf = daemons.write("check.conf", f'options {{ directory "{daemons.dir}"; }};\n'
                         f'relay {{ listen 127.0.0.1 port {mxb.free_port()}; '
                         f'{tls_block(crt, key)} {extra} }};\n')
    return mxb.run("smtp-relayd", "-t", "-c", conf)


def test_check_validates_the_auth_file(daemons):
    good = daemons.write("good.auth", "alice:$6$abc$def\n")
    assert check(daemons, f'auth-file "{good}";').returncode == 0
    bad = daemons.write("bad.auth", "# users\nalice:$6$abc$def\nbob:plaintext\n")
    r = check(daemons, f'auth-file "{bad}";')
    assert r.returncode == 1 and f"auth-file {bad}:3: not a crypt(3) hash" in r.stderr, r.stderr
    missing = os.path.join(daemons.dir, "missing.auth")
    r = check(daemons, f'auth-file "{missing}";')
    assert r.returncode == 1 and f"relay: auth-file {missing}: No such file" in r.stderr
    conf = daemons.write("notls.conf", f'options {{ directory "{daemons.dir}"; }};\n'
                         f'relay {{ auth-file "{good}"; }};\n')
    r = mxb.run("smtp-relayd", "-t", "-c", conf)
    assert r.returncode == 1 and "auth-file needs a tls" in r.stderr, r.stderr
