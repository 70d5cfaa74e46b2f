"""MTA-STS (RFC 8461) against real peers: NSD serves the _mta-sts TXT
records and the A records of the policy hosts, nginx serves the policies
over HTTPS with certificates from a test CA made here with the openssl CLI,
and `smtp-relayctl sts-fetch` runs smtp-relayd's mta_sts module alone
(the same code and cache delivery uses).

Checked: an enforce and a testing policy fetched and parsed, MX patterns
matched; the policy cache file written, then used after a "restart" (a new
process) while nginx is down as long as the id is unchanged; an unchanged
cache kept when a new id cannot be fetched (§5.1); a new id fetched again;
an expired cached policy neither reused nor a fallback; a certificate from
another CA or for another name, a redirect, a wrong Content-Type and a
policy over 64 KiB or one ended by the close alone (no Content-Length nor
chunking; a Python TLS server) give no policy (exit 75, tempfail); a domain
without a record has none; `-t` names a missing mta-sts-ca-file."""
import json
import os
import ssl
import subprocess

import mxb
from conftest import require_tool
from resolver_util import dns_answers, start_nsd, zone_text
from tls_util import start_nginx

ORIGIN = "sts.test"
POLICY_ENFORCE = ("version: STSv1\r\nmode: enforce\r\nmx: mx1.sts.test\r\n"
                  "mx: *.mx.sts.test\r\nmax_age: 86400\r\n")
POLICY_TESTING = "version: STSv1\nmode: testing\nmx: mail.testing.sts.test\nmax_age: 3600\n"
# name -> (certificate: from the good CA, the rogue CA, or the good one of
# mta-sts.sts.test (another name); policy text or None; extra nginx directives)
SITES = {
    "sts.test": ("good", POLICY_ENFORCE, ""),
    "wrongname.sts.test": ("other-name", POLICY_ENFORCE, ""),
    "testing.sts.test": ("good", POLICY_TESTING, ""),
    "badcert.sts.test": ("rogue", POLICY_ENFORCE, ""),
    "redirect.sts.test": ("good", None, "location / { return 301 "
                          "https://mta-sts.sts.test/.well-known/mta-sts.txt; }"),
    "ctype.sts.test": ("good", POLICY_ENFORCE, "types { application/octet-stream txt; }"),
    "expired.sts.test": ("good", POLICY_TESTING.replace("3600", "0"), ""),
    # The policy host has only an IPv6 address (AAAA ::1).
    "v6.sts.test": ("good", POLICY_TESTING.replace("mail.testing", "mx.v6"), ""),
    # Valid, but over the 64 KiB limit (§3.3): refused, not truncated.
    "big.sts.test": ("good", POLICY_ENFORCE + "x-pad: " + "p" * 70000 + "\r\n", ""),
}


def openssl(*args, cwd):
    subprocess.run([require_tool("openssl"), *args], cwd=cwd, check=True,
                   capture_output=True, timeout=60)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN=mxbroker test {name}", cwd=d)


def make_leaf(d, ca, host):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", f"{host}.key", "-out", f"{host}.csr", "-subj", f"/CN={host}", cwd=d)
    with open(os.path.join(d, f"{host}.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{host}\n")
    openssl("x509", "-req", "-in", f"{host}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{host}.crt", "-days", "2", "-extfile", f"{host}.ext",
            cwd=d)


def zone(ids):
    """The test zone: for every site its _mta-sts TXT (id from ids, else a1)
    and the A record of its policy host; nopolicy.sts.test has neither."""
    body = ""
    for name in SITES:
        rel = "" if name == ORIGIN else "." + name[: -len(ORIGIN) - 1]
        body += f'_mta-sts{rel} TXT "v=STSv1; id={ids.get(name, "a1")};"\n'
        addr = "AAAA ::1" if name.startswith("v6.") else "A 127.0.0.1"
        body += f"mta-sts{rel} {addr}\n"
    return zone_text(ORIGIN, body + "nopolicy A 127.0.0.1\n")


class Env:
    """The CA, nginx, NSD and the smtp-relayctl configuration of one test."""

    def __init__(self, daemons):
        self.daemons = daemons
        self.dir = daemons.dir
        self.https_port = mxb.free_port()
        self.nsd = None
        self.nginx = None
        make_ca(self.dir, "ca")
        make_ca(self.dir, "rogue")
        for name, (ca, _, _) in SITES.items():
            if ca != "other-name":
                make_leaf(self.dir, "ca" if ca == "good" else "rogue", f"mta-sts.{name}")
        self.start_dns({})
        self.conf = daemons.write("relay.conf", (
            f'options {{ directory "{self.dir}"; }};\n'
            f"resolver {{ nameservers {{ 127.0.0.1 port {self.dns_port}; }}; "
            f"timeout 1s; attempts 2; }};\n"
            f'relay {{ mta-sts-ca-file "{self.dir}/ca.crt"; mta-sts-port {self.https_port}; '
            f'mta-sts-cache "{self.dir}/sts-cache"; }};\n'))

    def start_dns(self, ids):
        if self.nsd is not None:
            self.nsd.stop()
            self.daemons.started.remove(self.nsd)
        port = getattr(self, "dns_port", None)
        if port is None:
            self.dns_port = start_nsd(self.daemons, {ORIGIN: zone(ids)})
        else:  # the same port again, so the configuration stays right
            self.daemons.write(f"{ORIGIN}.zone", zone(ids))
            conf = os.path.join(self.dir, "nsd.conf")
            self.daemons.start("nsd", [require_tool("nsd"), "-d", "-c", conf],
                               ready=dns_answers(port, ORIGIN))
        self.nsd = self.daemons.started[-1]

    def start_https(self, policies=None):
        servers = []
        for name, (ca, text, extra) in SITES.items():
            host = f"mta-sts.{name}"
            cert = "mta-sts.sts.test" if ca == "other-name" else host
            text = (policies or {}).get(name, text)
            root = os.path.join(self.dir, "www", name)
            if text is not None:
                self.daemons.write(f"www/{name}/.well-known/mta-sts.txt", text)
            os.makedirs(root, exist_ok=True)
            servers.append(
                f"server {{ listen 127.0.0.1:{self.https_port} ssl; "
                f"listen [::1]:{self.https_port} ssl; server_name {host};\n"
                f"  ssl_certificate {self.dir}/{cert}.crt; "
                f"ssl_certificate_key {self.dir}/{cert}.key;\n"
                f"  root {root}; {extra} }}\n")
        self.nginx = start_nginx(self.daemons, self.dir, self.https_port, servers)

    def stop_https(self):
        self.nginx.stop()

    def fetch(self, domain, *mx):
        r = mxb.run("smtp-relayctl", "-c", self.conf, "--json", "sts-fetch", domain, *mx,
                    timeout=60)
        assert r.returncode in (0, 75), f"sts-fetch: {r.returncode}\n{r.stdout}\n{r.stderr}"
        doc = json.loads(r.stdout)
        assert (doc["status"] == "tempfail") == (r.returncode == 75), doc
        return doc

    def cache_file(self, domain):
        return os.path.join(self.dir, "sts-cache", f"{domain}.policy")


def test_enforce_cache_restart_and_new_id(daemons):
    env = Env(daemons)
    env.start_https()
    doc = env.fetch("sts.test", "mx1.sts.test", "a.mx.sts.test", "a.b.mx.sts.test", "evil.test")
    assert doc["status"] == "policy", doc
    assert doc["detail"].startswith("fetched"), doc
    p = doc["policy"]
    assert (p["mode"], p["id"], p["max_age"]) == ("enforce", "a1", 86400), p
    assert p["mx"] == ["mx1.sts.test", "*.mx.sts.test"], p
    assert doc["matches"] == {"mx1.sts.test": True, "a.mx.sts.test": True,
                              "a.b.mx.sts.test": False, "evil.test": False}, doc
    with open(env.cache_file("sts.test")) as f:
        cached = f.read()
    assert "id: a1\n" in cached and "mode: enforce\n" in cached, cached

    # A new process (a restart) with nginx down: the cache answers, id unchanged.
    env.stop_https()
    doc = env.fetch("sts.test", "mx1.sts.test")
    assert doc["status"] == "policy" and "unchanged" in doc["detail"], doc
    assert doc["policy"]["mode"] == "enforce" and doc["matches"]["mx1.sts.test"], doc

    # A new id that cannot be fetched: the unexpired cached policy stays (§5.1).
    env.start_dns({"sts.test": "b2"})
    doc = env.fetch("sts.test")
    assert doc["status"] == "policy" and doc["policy"]["id"] == "a1", doc
    assert "failed" in doc["detail"], doc

    # The new id with the policy host back: fetched again, the cache replaced.
    env.start_https({"sts.test": POLICY_TESTING.replace("mail.testing", "mx9")})
    doc = env.fetch("sts.test", "mx1.sts.test", "mx9.sts.test")
    assert doc["status"] == "policy" and doc["detail"].startswith("fetched"), doc
    assert (doc["policy"]["id"], doc["policy"]["mode"]) == ("b2", "testing"), doc
    assert doc["matches"] == {"mx1.sts.test": False, "mx9.sts.test": True}, doc
    with open(env.cache_file("sts.test")) as f:
        assert "id: b2\n" in f.read()


def test_testing_mode_and_ipv6(daemons):
    env = Env(daemons)
    env.start_https()
    doc = env.fetch("testing.sts.test", "mail.testing.sts.test", "MAIL.Testing.STS.test.")
    assert doc["status"] == "policy", doc
    assert (doc["policy"]["mode"], doc["policy"]["max_age"]) == ("testing", 3600), doc
    assert all(doc["matches"].values()), doc
    # Fetched over IPv6 from a host with only an AAAA record.
    doc = env.fetch("v6.sts.test", "mx.v6.sts.test")
    assert doc["status"] == "policy" and doc["matches"]["mx.v6.sts.test"], doc


def test_wrong_ca_wrong_name_redirect_and_content_type_give_no_policy(daemons):
    env = Env(daemons)
    env.start_https()
    doc = env.fetch("badcert.sts.test")
    assert doc["status"] == "tempfail" and "policy" not in doc, doc
    assert "certificate" in doc["detail"], doc
    assert not os.path.exists(env.cache_file("badcert.sts.test"))
    # A certificate from the right CA for another name (the hostname check).
    doc = env.fetch("wrongname.sts.test")
    assert doc["status"] == "tempfail" and "certificate" in doc["detail"], doc
    doc = env.fetch("redirect.sts.test")
    assert doc["status"] == "tempfail" and "301" in doc["detail"], doc
    doc = env.fetch("ctype.sts.test")
    assert doc["status"] == "tempfail" and "Content-Type" in doc["detail"], doc
    doc = env.fetch("big.sts.test")
    assert doc["status"] == "tempfail" and "65536" in doc["detail"], doc
    # The redirect target itself is fine: the failure above is the redirect.
    assert env.fetch("sts.test")["status"] == "policy"


def test_no_record_no_policy(daemons):
    env = Env(daemons)
    doc = env.fetch("nopolicy.sts.test", "mx1.sts.test")
    assert doc["status"] == "none" and "policy" not in doc, doc
    assert doc["matches"] == {"mx1.sts.test": False}, doc


def test_expired_cache_is_not_used(daemons):
    env = Env(daemons)
    env.start_https()
    doc = env.fetch("expired.sts.test")
    assert doc["status"] == "policy" and doc["policy"]["max_age"] == 0, doc
    assert os.path.exists(env.cache_file("expired.sts.test"))
    # Same id, but max_age 0 has run out: fetched again, not taken from the cache.
    doc = env.fetch("expired.sts.test")
    assert doc["detail"].startswith("fetched"), doc
    env.stop_https()
    doc = env.fetch("expired.sts.test")
    assert doc["status"] == "tempfail" and "policy" not in doc, doc


def test_check_names_a_missing_ca_file(daemons):
    conf = daemons.write("t.conf", (
        f'options {{ directory "{daemons.dir}"; }};\n'
        'relay {\n    hostname "r.test";\n    mta-sts-ca-file "no-such-ca.pem";\n};\n'))
    r = subprocess.run([mxb.binary("smtp-relayd"), "-t", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1, r
    assert f"{conf}:4: relay: mta-sts-ca-file {daemons.dir}/no-such-ca.pem: No such file" \
        in r.stderr, r.stderr
    # mta-sts no: the file is not needed.
    conf = daemons.write("u.conf", (
        f'options {{ directory "{daemons.dir}"; }};\n'
        'relay {\n    hostname "r.test";\n    mta-sts no;\n'
        '    mta-sts-ca-file "no-such-ca.pem";\n};\n'))
    r = subprocess.run([mxb.binary("smtp-relayd"), "-t", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    assert "mta-sts-ca-file" not in r.stderr, r.stderr


def test_body_ended_by_close_alone_is_refused(daemons):
    """A body with neither Content-Length nor chunking ends at the close,
    which an attacker can bring forward (servers often skip close_notify,
    so that is allowed): such a policy is refused, even after a clean
    close_notify.  The same server with a Content-Length is accepted, so
    the refusal is for the framing alone."""
    env = Env(daemons)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{env.dir}/mta-sts.sts.test.crt", f"{env.dir}/mta-sts.sts.test.key")
    framed = {"on": False}

    def handle(conn):
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                tls.settimeout(5)
                tls.recv(4096)
                head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                if framed["on"]:
                    head += f"Content-Length: {len(POLICY_ENFORCE)}\r\n"
                tls.sendall((head + "\r\n" + POLICY_ENFORCE).encode())
                tls.unwrap()  # a clean close_notify: the body ends as sent
        except (OSError, ssl.SSLError):
            pass

    srv = mxb.TcpResponder("127.0.0.1", env.https_port, handle)
    try:
        framed["on"] = True
        doc = env.fetch("sts.test")
        assert doc["status"] == "policy" and doc["policy"]["mode"] == "enforce", doc
        framed["on"] = False
        os.unlink(env.cache_file("sts.test"))
        doc = env.fetch("sts.test")
        assert doc["status"] == "tempfail" and "Content-Length" in doc["detail"], doc
    finally:
        srv.close()
