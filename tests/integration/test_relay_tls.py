"""smtp-relayd inbound TLS (issue 17): STARTTLS (RFC 3207) on the SMTP
listener, an implicit-TLS listener, Received: with ESMTPS (RFC 3848) and the
cipher, plaintext pipelined after STARTTLS thrown away (CVE-2011-0411), the
certificate reloaded on SIGHUP, -t errors naming the file.  Real clients:
swaks, openssl s_client, Postfix, Python's ssl."""
import os
import re
import signal
import smtplib
import subprocess

import pytest

import mxb
from conftest import require_tool
from tls_util import CA, TlsSmtp, tls_block
from relay_util import PrivatePostfix, Relay


@pytest.fixture
def ca(tmp_path):
    return CA(folder=str(tmp_path / "ca"))


def tls_relay(daemons, ca, extra="", name="srv"):
    crt, key = ca.issue(name)
    return Relay(daemons, extra=tls_block(crt, key) + "\n" + extra)


def swaks(*args):
    return subprocess.run([require_tool("swaks"), "--from", "alice@client.test",
                           "--h-Subject", "tls test", "--helo", "client.test", *args],
                          capture_output=True, text=True, timeout=60)


def only_message(relay):
    mxb.wait_until(lambda: len(relay.queue_ids()) == 1, 10, "the message in the queue")
    return relay.ctl_json("show", relay.queue_ids()[0])


RECEIVED_TLS = re.compile(
    r"^Received: from client\.test \(unknown \[127\.0\.0\.1\]\)\r\n"
    r"\t\(using TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)\)\r\n"
    r"\tby relay\.test \(mxbroker\) with ESMTPS id [0-9a-f]{16}\r\n"
    r"\tfor <bob@example\.test>; ")


def test_swaks_starttls(daemons, ca):
    relay = tls_relay(daemons, ca)
    r = swaks("--server", f"127.0.0.1:{relay.port}", "--to", "bob@example.test", "--tls")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 2.0.0 Ready to start TLS" in r.stdout
    assert "=== TLS started with cipher TLSv1.3:" in r.stdout, r.stdout
    content = only_message(relay)["content"]
    assert RECEIVED_TLS.match(content), content[:400]
    log = relay.d.log()
    assert re.search(r"smtp: TLS connection established from unknown\[127\.0\.0\.1\]: "
                     r"TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)", log), log
    assert re.search(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=2 starttls=1 mail=1 "
                     r"rcpt=1 data=1 quit=1 commands=7 tls=TLSv1\.3/\S+", log), log
    assert relay.status()["counters"]["tls_sessions"] == 1


def test_plaintext_without_tls_block_has_no_starttls(daemons):
    relay = Relay(daemons)
    c = relay.connect()
    code, text = c.cmd("EHLO client.test")
    assert code == 250 and "STARTTLS" not in text
    assert c.cmd("STARTTLS")[0] == 502
    c.close()


def test_openssl_s_client_starttls(daemons, ca):
    relay = tls_relay(daemons, ca)
    r = subprocess.run([require_tool("openssl"), "s_client", "-starttls", "smtp", "-crlf",
                        "-ign_eof", "-connect", f"127.0.0.1:{relay.port}", "-CAfile", ca.cert,
                        "-verify_return_error", "-verify_hostname", "localhost",
                        "-servername", "localhost"],
                       input="EHLO client.test\nNOOP\nQUIT\n", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verify return code: 0 (ok)" in r.stdout
    assert re.search(r"New, TLSv1\.3, Cipher is TLS_", r.stdout), r.stdout
    # After the handshake the EHLO list no longer offers STARTTLS.
    after = r.stdout.split("Verify return code: 0 (ok)\n---\n", 1)[1]
    assert "250-relay.test" in after and "STARTTLS" not in after, after
    assert "250 2.0.0 Ok" in after and "221 2.0.0 Bye" in after
    # The relay ends the TLS session properly (close_notify) after QUIT.
    assert "unexpected eof" not in r.stdout + r.stderr


def test_tls_1_1_refused(daemons, ca):
    relay = tls_relay(daemons, ca)
    r = subprocess.run([require_tool("openssl"), "s_client", "-starttls", "smtp",
                        "-connect", f"127.0.0.1:{relay.port}", "-tls1_1", "-cipher",
                        "DEFAULT:@SECLEVEL=0"],
                       input="QUIT\n", capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    mxb.wait_until(lambda: "TLS handshake failed from unknown[127.0.0.1]" in relay.d.log(),
                   10, "the failed handshake in the log")
    assert "unsupported protocol" in relay.d.log()


def test_session_restarts_and_second_starttls_is_refused(daemons, ca):
    relay = tls_relay(daemons, ca)
    c = TlsSmtp("127.0.0.1", relay.port)
    assert "STARTTLS" in c.cmd("EHLO client.test")[1]
    c.starttls(ca.context())
    # RFC 3207 4.2: the HELO before the handshake is forgotten.
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 503
    code, text = c.cmd("EHLO client.test")
    assert code == 250 and "STARTTLS" not in text
    code, text = c.cmd("STARTTLS")
    assert code == 503 and "TLS already active" in text
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    c.close()


def test_starttls_inside_a_transaction_is_refused(daemons, ca):
    relay = tls_relay(daemons, ca)
    c = TlsSmtp("127.0.0.1", relay.port)
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd("STARTTLS")[0] == 503
    c.close()


def test_plaintext_pipelined_after_starttls_is_discarded(daemons, ca):
    """CVE-2011-0411: 'STARTTLS\\r\\nRSET\\r\\nHELP\\r\\n' in one write.  The
    server answers 220 and nothing else in plaintext; after the handshake
    the injected RSET and HELP were never run: the next reply is the one
    to our own NOOP, and the counts in the log have no rset or help."""
    relay = tls_relay(daemons, ca)
    c = TlsSmtp("127.0.0.1", relay.port)
    assert c.cmd("EHLO client.test")[0] == 250
    c.send("STARTTLS\r\nRSET\r\nHELP\r\n")
    code, text = c.reply()
    assert code == 220, text
    assert c.buf == b""
    c.sock = ca.context().wrap_socket(c.sock, server_hostname="localhost")
    assert c.cmd("NOOP") == (250, "250 2.0.0 Ok")
    assert c.cmd("QUIT") == (221, "221 2.0.0 Bye")
    assert c.buf == b""
    c.close()
    mxb.wait_until(lambda: "disconnect from" in relay.d.log(), 10, "the disconnect")
    log = relay.d.log()
    assert "smtp: unknown[127.0.0.1]: 12 octets pipelined after STARTTLS discarded" in log
    assert re.search(r"disconnect from unknown\[127\.0\.0\.1\] ehlo=1 starttls=1 noop=1 "
                     r"quit=1 commands=4 tls=TLSv1\.3/", log), log


def test_plaintext_after_starttls_breaks_the_handshake(daemons, ca):
    """Plaintext that arrives after the 220 is read as TLS: the handshake
    fails, is logged with OpenSSL's reason, and the connection closes."""
    relay = tls_relay(daemons, ca)
    c = TlsSmtp("127.0.0.1", relay.port)
    assert c.cmd("STARTTLS")[0] == 220
    c.send("MAIL FROM:<evil@client.test>\r\n")
    assert recv_or_reset(c.sock) == b""
    mxb.wait_until(lambda: "TLS handshake failed" in relay.d.log(), 10, "the failure")
    log = relay.d.log()
    assert re.search(r"smtp: TLS handshake failed from unknown\[127\.0\.0\.1\]: "
                     r"(wrong version number|http request|unknown protocol|"
                     r"record layer failure|packet length too long)", log), log
    assert relay.status()["counters"]["tls_failures"] == 1
    c.close()


def test_smtps_listener_swaks_tls_on_connect(daemons, ca):
    port = mxb.free_port()
    relay = tls_relay(daemons, ca, extra=f"smtps-listen 127.0.0.1 port {port};")
    r = swaks("--server", f"127.0.0.1:{port}", "--to", "bob@example.test", "--tls-on-connect")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<~  220 relay.test ESMTP mxbroker" in r.stdout
    content = only_message(relay)["content"]
    assert RECEIVED_TLS.match(content), content[:400]
    # No STARTTLS on a connection that is already TLS.
    c = TlsSmtp("127.0.0.1", port, ca.context(), implicit=True)
    assert "STARTTLS" not in c.cmd("EHLO client.test")[1]
    c.close()
    assert "smtps: listening on 127.0.0.1:%d" % port in relay.d.log()


def test_smtps_plaintext_client_is_dropped(daemons, ca):
    port = mxb.free_port()
    relay = tls_relay(daemons, ca, extra=f"smtps-listen 127.0.0.1 port {port};")
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"EHLO client.test\r\n")
    assert recv_or_reset(s) == b""
    s.close()
    mxb.wait_until(lambda: "TLS handshake failed from unknown[127.0.0.1]" in relay.d.log(),
                   10, "the failure")


def recv_or_reset(sock):
    """What the server sends before it closes (a reset counts as nothing)."""
    try:
        return sock.recv(100)
    except ConnectionResetError:
        return b""


def serial(ctx, port):
    c = TlsSmtp("127.0.0.1", port)
    c.cmd("EHLO client.test")
    c.starttls(ctx)
    sn = c.sock.getpeercert()["serialNumber"]
    c.close()
    return sn


def test_sighup_reloads_the_certificate(daemons, ca):
    crt, key = ca.issue("srv")
    live_crt, live_key = os.path.join(daemons.dir, "live.crt"), os.path.join(daemons.dir,
                                                                             "live.key")
    os.replace(crt, live_crt)
    os.replace(key, live_key)
    relay = Relay(daemons, extra=tls_block(live_crt, live_key))
    ctx = ca.context()
    first = serial(ctx, relay.port)
    # A session open across the reload keeps its TLS connection.
    open_session = TlsSmtp("127.0.0.1", relay.port)
    open_session.cmd("EHLO client.test")
    open_session.starttls(ctx)
    assert open_session.sock.getpeercert()["serialNumber"] == first
    crt2, key2 = ca.issue("srv2")
    os.replace(crt2, live_crt)
    os.replace(key2, live_key)
    relay.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: f"tls: certificate {live_crt} reloaded" in relay.d.log(), 10,
                   "the reload")
    second = serial(ctx, relay.port)
    assert second != first
    assert open_session.cmd("EHLO client.test")[0] == 250
    assert open_session.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert open_session.cmd("RCPT TO:<bob@example.test>")[0] == 250
    assert open_session.cmd("DATA")[0] == 354
    code, text = open_session.cmd("Subject: across a reload\r\n\r\nbody\r\n.")
    assert code == 250, text
    open_session.close()
    # A key that does not match: the running certificate stays.
    _, other_key = ca.issue("srv3")
    os.replace(other_key, live_key)
    relay.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: "keeping the running certificate" in relay.d.log(), 10,
                   "the refused reload")
    assert f"key {live_key} does not match certificate {live_crt}" in relay.d.log()
    assert serial(ctx, relay.port) == second


def check(conf_text, daemons):
    conf = daemons.write("check.conf", conf_text)
    return mxb.run("smtp-relayd", "-t", "-c", conf)


def conf_with(daemons, tls):
    return (f'options {{ directory "{daemons.dir}"; }};\n'
            f'relay {{ listen 127.0.0.1 port {mxb.free_port()}; {tls} }};\n')


def test_check_reports_missing_and_mismatched_files(daemons, ca):
    crt, key = ca.issue("srv")
    _, other_key = ca.issue("other")
    r = check(conf_with(daemons, tls_block(crt, key)), daemons)
    assert r.returncode == 0, r.stderr
    missing = os.path.join(daemons.dir, "nokey.pem")
    r = check(conf_with(daemons, tls_block(crt, missing)), daemons)
    assert r.returncode == 1
    assert f"relay: tls: key {missing}: No such file or directory" in r.stderr, r.stderr
    r = check(conf_with(daemons, tls_block(crt, other_key)), daemons)
    assert r.returncode == 1
    assert f"key {other_key} does not match certificate {crt}" in r.stderr, r.stderr
    garbage = daemons.write("garbage.crt", "not a certificate\n")
    r = check(conf_with(daemons, tls_block(garbage, key)), daemons)
    assert r.returncode == 1 and f"certificate {garbage}:" in r.stderr, r.stderr
    r = check(conf_with(daemons, f"smtps-listen 127.0.0.1 port {mxb.free_port()};"), daemons)
    assert r.returncode == 1 and "smtps-listen needs a tls" in r.stderr, r.stderr
    r = check(conf_with(daemons, f'tls {{ certificate "{crt}"; }};'), daemons)
    assert r.returncode == 1 and "needs both 'certificate' and 'key'" in r.stderr


def test_startup_fails_on_a_bad_key(daemons, ca):
    crt, _ = ca.issue("srv")
    _, other_key = ca.issue("other")
    conf = daemons.write("bad.conf", conf_with(daemons, tls_block(crt, other_key)))
    r = subprocess.run([mxb.binary("smtp-relayd"), "-d", "-c", conf], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0
    assert f"key {other_key} does not match certificate {crt}" in r.stderr


def test_postfix_encrypt_hands_mail_over_tls(daemons, ca):
    relay = tls_relay(daemons, ca)
    pf = PrivatePostfix(daemons, f"[127.0.0.1]:{relay.port}",
                        extra=f"smtp_tls_security_level = encrypt\n"
                              f"smtp_tls_CAfile = {ca.cert}\n"
                              f"smtp_tls_loglevel = 1\n")
    try:
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=20) as s:
            s.ehlo("client.test")
            s.sendmail("alice@client.test", ["bob@example.test"],
                       b"Subject: via Postfix over TLS\r\n\r\nhello\r\n")
        mxb.wait_until(lambda: len(relay.queue_ids()) == 1, 30,
                       "Postfix to hand the message over TLS")
        content = relay.ctl_json("show", relay.queue_ids()[0])["content"]
        assert re.search(r"\(using TLSv1\.3 with cipher \S+ \(\d+/\d+ bits\)\)\r\n"
                         r"\tby relay\.test \(mxbroker\) with ESMTPS id", content), content[:600]
        mxb.wait_until(lambda: "status=sent" in pf.log(), 30, "Postfix's status=sent")
        assert re.search(r"Trusted TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]"
                         r":\d+: TLSv1\.3", pf.log()), pf.log()
    finally:
        pf.stop()
