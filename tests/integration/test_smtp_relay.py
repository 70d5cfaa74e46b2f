"""smtp-relayd as an RFC 5321 server: conversations with swaks, smtplib and
raw sockets, limits, the queue it writes, smtp-relayctl and /status."""
import json
import os
import re
import signal
import smtplib
import subprocess
import time

import pytest

import mxb
from conftest import require_tool
from relay_util import Relay

BODY = b"Subject: test\r\n\r\nhello\r\n.\r\n"


@pytest.fixture
def relay(daemons):
    return Relay(daemons)


def swaks(relay, *args):
    exe = require_tool("swaks")
    r = subprocess.run([exe, "--server", f"{relay.host}:{relay.port}", "--timeout", "10",
                        "--from", "sender@client.test", *args],
                       capture_output=True, text=True, timeout=60)
    return r


def content_of(relay, qid):
    return relay.ctl_json("show", qid)["content"]


def test_swaks_conversation_is_queued(relay):
    r = swaks(relay, "--to", "user@example.test", "--header", "Subject: swaks one")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 relay.test ESMTP" in r.stdout
    assert "250-PIPELINING" in r.stdout and "250-8BITMIME" in r.stdout
    assert "250-SIZE 10485760" in r.stdout and "250 ENHANCEDSTATUSCODES" in r.stdout
    assert "250 2.0.0 Ok: queued as " in r.stdout
    qid = r.stdout.split("queued as ")[1].split()[0]
    assert relay.queue_ids() == [qid]
    msg = relay.ctl_json("show", qid)
    assert msg["sender"] == "sender@client.test"
    assert msg["client"]["address"] == "127.0.0.1"
    assert [(x["address"], x["state"], x["attempts"]) for x in msg["recipients"]] == \
        [("user@example.test", "pending", 0)]
    assert msg["content"].startswith("Received: from ")
    assert f"by relay.test (mxbroker) with ESMTP id {qid}" in msg["content"]
    assert "Subject: swaks one" in msg["content"]


def test_swaks_pipelining(relay):
    r = swaks(relay, "--pipeline", "--to", "a@example.test,b@example.test")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as" in r.stdout
    (qid,) = relay.queue_ids()
    rcpts = [x["address"] for x in relay.ctl_json("show", qid)["recipients"]]
    assert rcpts == ["a@example.test", "b@example.test"]


def test_pipelined_group_answered_in_order(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    c.send("MAIL FROM:<a@client.test>\r\nRCPT TO:<x@example.test>\r\n"
           "RCPT TO:<y@outside.test>\r\nRCPT TO:<z@example.test>\r\nDATA\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 250, 250, 354]   # 127.0.0.1 is trusted: outside relays
    c.send(BODY)
    assert c.reply()[0] == 250
    c.send("RSET\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nNOOP\r\nQUIT\r\n")
    assert [c.reply()[0] for _ in range(5)] == [250, 250, 250, 250, 221]


def test_client_that_does_not_read_gets_every_reply_in_order(relay):
    """Plain sessions write replies straight to the socket; what it does not
    take waits in the output (reading pauses above 64 KiB) and goes out as
    the client reads.  60,000 pipelined HELPs (~4 MB of replies, more than
    the kernel buffers) from a client with a 4 KiB receive buffer that reads
    nothing for a second: every reply arrives, in order, and the session
    goes on as usual afterwards."""
    import socket
    import threading
    n = 60000
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(30)
    s.connect((relay.host, relay.port))
    # A thread sends: the relay stops reading while its replies wait.
    sender = threading.Thread(
        target=s.sendall, args=(b"EHLO client.test\r\n" + b"HELP\r\n" * n,))
    sender.start()
    time.sleep(1.0)
    buf = bytearray()
    while buf.count(b"\r\n214 ") < n:
        chunk = s.recv(65536)
        assert chunk, f"connection closed after {buf.count(b'214 ')} HELP replies"
        buf += chunk
    sender.join(10)
    lines = bytes(buf).split(b"\r\n")
    assert lines[0].startswith(b"220 ") and lines[-1] == b""
    helps = [x for x in lines if x.startswith(b"214 ")]
    assert len(helps) == n and all(x == helps[0] for x in helps)
    f = s.makefile("rb")
    s.sendall(b"MAIL FROM:<a@client.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
    assert [f.readline()[:3] for _ in range(3)] == [b"250", b"250", b"354"]
    s.sendall(BODY + b"QUIT\r\n")
    assert f.readline().startswith(b"250 2.0.0 Ok: queued as ")
    assert f.readline().startswith(b"221 ")
    assert f.readline() == b""
    s.close()
    assert len(relay.queue_ids()) == 1


def test_smtplib_full_conversation(relay):
    with smtplib.SMTP(relay.host, relay.port, timeout=10) as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        assert s.has_extn("size") and s.has_extn("enhancedstatuscodes")
        assert s.noop()[0] == 250
        assert s.verify("someone")[0] == 252
        code, text = s.docmd("HELP")
        assert code == 214 and b"2.0.0" in text
        refused = s.sendmail("from@client.test", ["one@example.test", "two@example.test"],
                             b"Subject: smtplib\r\n\r\nbody\r\n")
        assert refused == {}
        assert s.rset()[0] == 250
    (qid,) = relay.queue_ids()
    assert "Subject: smtplib" in content_of(relay, qid)


def test_8bitmime_body_kept_exactly(relay):
    body = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" \
           "Grüße aus Köln — ½ €\r\n"
    with smtplib.SMTP(relay.host, relay.port, timeout=10) as s:
        s.ehlo("client.test")
        assert s.has_extn("8bitmime")
        s.sendmail("a@client.test", ["b@example.test"], body.encode("utf-8"),
                   mail_options=["BODY=8BITMIME"])
    (qid,) = relay.queue_ids()
    msg = relay.ctl_json("show", qid)
    assert msg["body"] == "8BITMIME"
    assert msg["content"].endswith(body)


def test_dot_stuffing_lone_dot_survives(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, text = c.transaction("a@client.test", ["b@example.test"],
                               b"Subject: dots\r\n\r\nbefore\r\n..\r\n..x\r\n...\r\nafter\r\n.\r\n")
    assert code == 250, text
    (qid,) = relay.queue_ids()
    assert content_of(relay, qid).endswith("before\r\n.\r\n.x\r\n..\r\nafter\r\n")


def test_size_declared_too_big_refused_at_mail(daemons):
    relay = Relay(daemons, "max-message-size 2K;")
    c = relay.connect()
    assert "SIZE 2048" in c.cmd("EHLO client.test")[1]
    code, text = c.cmd("MAIL FROM:<a@client.test> SIZE=4096")
    assert code == 552 and "5.3.4" in text
    assert c.cmd("MAIL FROM:<a@client.test> SIZE=1000")[0] == 250


def test_size_actual_too_big_nothing_queued(daemons):
    relay = Relay(daemons, "max-message-size 2K;")
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, text = c.transaction("a@client.test", ["b@example.test"],
                               b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n" * 1 +
                               (b"y" * 78 + b"\r\n") * 40 + b".\r\n")
    assert code == 552 and "5.3.4" in text
    assert relay.queue_files() == [] and relay.queue_files("tmp") == []
    # The session goes on: a small message after the refused one is queued.
    code, _ = c.transaction("a@client.test", ["b@example.test"], BODY)
    assert code == 250
    assert len(relay.queue_ids()) == 1


def test_101st_recipient_gets_452(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    for i in range(100):
        assert c.cmd(f"RCPT TO:<r{i}@example.test>")[0] == 250
    code, text = c.cmd("RCPT TO:<r100@example.test>")
    assert code == 452 and "4.5.3" in text
    assert c.cmd("DATA")[0] == 354
    c.send(BODY)
    assert c.reply()[0] == 250
    (qid,) = relay.queue_ids()
    assert len(relay.ctl_json("show", qid)["recipients"]) == 100


def test_line_of_1001_octets_gets_500(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, text = c.transaction("a@client.test", ["b@example.test"],
                               b"Subject: long\r\n\r\n" + b"x" * 1001 + b"\r\nok\r\n.\r\n")
    assert code == 500, text
    assert relay.queue_files() == []
    # 998 octets + CRLF = 1000 is the limit and is fine.
    code, text = c.transaction("a@client.test", ["b@example.test"],
                               b"Subject: long\r\n\r\n" + b"x" * 998 + b"\r\n.\r\n")
    assert code == 250, text


def test_command_line_over_512_gets_500(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, text = c.cmd("NOOP " + "x" * 600)
    assert code == 500 and "5.5.2" in text
    assert c.cmd("NOOP")[0] == 250


@pytest.mark.parametrize("smuggle", [b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"a\rb\r\n"])
def test_bare_lf_or_cr_in_data_refused(relay, smuggle):
    c = relay.connect()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: smuggle\r\n\r\nx" + smuggle +
           b"MAIL FROM:<evil@client.test>\r\nRCPT TO:<v@example.test>\r\nDATA\r\n"
           b"smuggled\r\n.\r\n")
    code, text = c.reply()
    assert code == 521 and "5.5.2" in text
    assert c.closed()
    assert relay.queue_files() == []


def test_client_gone_before_250(relay):
    for _ in range(5):
        c = relay.connect()
        c.send("EHLO client.test\r\nMAIL FROM:<a@client.test>\r\n"
               "RCPT TO:<b@example.test>\r\n")
        assert [c.reply()[0] for _ in range(2)] == [250, 250] and c.reply()[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(BODY + b"QUIT\r\n")
        c.close()                      # gone before the 250: never acknowledged
    # Nothing was promised; the commits still complete (a duplicate is
    # allowed, a half-written file is not) and the daemon goes on serving.
    mxb.wait_until(lambda: relay.status()["sessions"]["open"] == 0, 5, "sessions to end")
    assert len(relay.queue_ids()) == 5
    assert relay.queue_files("tmp") == []
    assert relay.ctl_json("analyze")["damaged"] == 0
    assert relay.connect().banner[0] == 220


def test_sequencing_errors(relay):
    c = relay.connect()
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 503      # before HELO
    assert c.cmd("HELO client.test")[0] == 250
    code, text = c.cmd("RCPT TO:<b@example.test>")
    assert code == 503 and "5.5.1" in text                     # before MAIL
    assert c.cmd("DATA")[0] == 503
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 250
    assert c.cmd("MAIL FROM:<a@client.test>")[0] == 503      # nested
    code, text = c.cmd("DATA")
    assert code == 554 and "no valid recipients" in text
    assert c.cmd("BOGUS")[0] == 500
    assert c.cmd("EXPN list")[0] == 502
    assert c.cmd("RSET")[0] == 250
    assert c.cmd("MAIL FROM:<a@client.test> FOO=BAR")[0] == 555
    assert c.cmd("MAIL FROM:a@client.test")[0] == 501
    code, text = c.cmd("QUIT")
    assert code == 221 and "2.0.0" in text


def test_every_reply_has_an_enhanced_code(relay):
    c = relay.connect()
    replies = [c.cmd(x) for x in ("HELO client.test", "NOOP", "MAIL FROM:<>",
                                  "RCPT TO:<user@outside.invalid>", "RCPT TO:<postmaster>",
                                  "VRFY x", "RSET", "BOGUS", "DATA", "QUIT")]
    for code, text in replies[1:]:
        parts = text.split()
        assert parts[1][0] in "245" and parts[1].count(".") == 2, text


def test_loop_of_100_received_lines_refused(relay):
    c = relay.connect()
    c.cmd("EHLO client.test")
    def hops(n):
        return b"".join(b"Received: from hop%d by x; Thu, 1 Jan 2026 00:00:00 +0000\r\n" % i
                        for i in range(n))
    code, text = c.transaction("a@client.test", ["b@example.test"],
                               hops(100) + b"Subject: loop\r\n\r\nbody\r\n.\r\n")
    assert code == 554 and "5.4.6" in text
    code, _ = c.transaction("a@client.test", ["b@example.test"],
                            hops(99) + b"Subject: 99 hops\r\n\r\nbody\r\n.\r\n")
    assert code == 250
    assert len(relay.queue_ids()) == 1


def test_session_limits(daemons):
    relay = Relay(daemons, "max-sessions 3; max-sessions-per-client 2;")
    a = relay.connect(source="127.0.0.4")     # untrusted: the per-client limit applies
    b = relay.connect(source="127.0.0.4")
    assert a.banner[0] == 220 and b.banner[0] == 220
    c = relay.connect(source="127.0.0.4")     # third from 127.0.0.4: per-client limit
    assert c.banner[0] == 421 and "too many connections from your address" in c.banner[1]
    assert c.closed()
    d = relay.connect(source="127.0.0.2")
    assert d.banner[0] == 220
    assert relay.status()["sessions"] == {"open": 3, "max": 3, "max_per_client": 2}
    e = relay.connect(source="127.0.0.3")     # fourth in all: max-sessions
    assert e.banner[0] == 421 and "4.7.0" in e.banner[1]
    a.cmd("QUIT")
    mxb.wait_until(lambda: relay.status()["sessions"]["open"] == 2, 5, "session to end")
    f = relay.connect()
    assert f.banner[0] == 220
    st = relay.status()
    assert st["counters"]["connections_refused"] == 2


# Serial (docs/testing.md): command-timeout 1 answered within 0.5-5 s is a timing claim.
@pytest.mark.serial
def test_command_timeout(daemons):
    relay = Relay(daemons, "command-timeout 1;")
    c = relay.connect()
    c.cmd("EHLO client.test")
    t0 = time.monotonic()
    code, text = c.reply()
    assert code == 421 and "4.4.2" in text
    assert 0.5 < time.monotonic() - t0 < 5
    assert c.closed()
    assert relay.status()["counters"]["timeouts"] == 1


def test_status_and_metrics(relay):
    r = swaks(relay, "--to", "user@example.test")
    assert r.returncode == 0
    st = relay.status()
    assert st["program"] == "smtp-relayd"
    assert st["sessions"]["max"] == 100 and st["sessions"]["open"] == 0
    assert st["queue"]["messages"] == 1
    assert st["counters"]["messages_queued"] == 1
    assert st["counters"]["recipients_accepted"] == 1
    code, _, body = mxb.http_get("127.0.0.1", relay.status_port, "/metrics")
    assert code == 200
    assert "mxbroker_smtp_sessions_max 100" in body
    assert 'mxbroker_relay_queue_messages{state="hold"} 1' in body
    assert 'mxbroker_relay_queue_messages{state="deferred"} 0' in body
    assert "mxbroker_relay_queue_oldest_message_age_seconds " in body
    assert "mxbroker_smtp_messages_queued_total 1" in body


def test_relayctl_commands(relay):
    for i in range(3):
        assert swaks(relay, "--to", f"u{i}@example.test").returncode == 0
    ids = relay.queue_ids()
    assert len(ids) == 3
    human = relay.ctl("list").stdout
    assert all(i in human for i in ids) and "3 messages in the queue" in human
    show = relay.ctl("show", ids[0]).stdout
    assert "<u0@example.test>" in show or "<u1@example.test>" in show or "u2" in show
    assert relay.ctl("show", "0123456789abcdef", check=False).returncode == 1
    st = relay.ctl_json("stats")
    assert st["queue"]["messages"] == 3 and st["queue"]["recipients"]["pending"] == 3
    assert st["daemon"]["sessions"]["max"] == 100
    fl = relay.ctl_json("flush")
    assert fl["ok"] is True
    assert relay.ctl_json("flush", ids[0])["ok"] is True
    rm = relay.ctl_json("remove", ids[0])
    assert rm == {"ok": True, "removed": ids[0]}
    assert "removed by the operator" in relay.d.log()
    assert relay.queue_ids() == ids[1:]
    assert relay.status()["queue"]["messages"] == 2
    r = relay.ctl("remove", ids[0], check=False)
    assert r.returncode == 1 and "no such message" in r.stderr
    an = relay.ctl_json("analyze")
    assert an["messages"] == 2 and an["damaged"] == 0 and an["findings"] == []
    assert relay.ctl("bogus", check=False).returncode == 64
    # With the daemon stopped: remove works on the directory, flush says so.
    relay.d.stop()
    assert relay.ctl_json("remove", ids[1])["ok"] is True
    r = relay.ctl("flush", check=False)
    assert r.returncode == 69 and "does not answer" in r.stderr
    assert relay.ctl_json("stats")["daemon"] is None


def test_restart_recovers_queue(daemons):
    relay = Relay(daemons)
    assert swaks(relay, "--to", "keep@example.test").returncode == 0
    (good,) = relay.queue_ids()
    relay.d.stop()
    spool = relay.spool
    with open(os.path.join(spool, "tmp", "0000000000000001"), "w") as f:
        f.write("half-written")
    bad = "00000000000000ff"
    with open(os.path.join(spool, "queue", bad), "w") as f:
        f.write("MXBQ1 10 10\ngarbage")
    an = relay.ctl_json("analyze")
    assert an["stale"] == 1 and an["damaged"] == 1 and an["messages"] == 1
    relay.start()
    assert f"queue: {bad}: damaged (bad header" in relay.d.log() or \
        f"queue: {bad}: damaged (truncated" in relay.d.log()
    # The intake's write probe (tmp/probe) may be there for a moment.
    assert relay.queue_files("tmp") == []
    assert relay.queue_files("corrupt") == [bad]
    assert relay.queue_ids() == [good]
    assert relay.status()["queue"]["messages"] == 1


def test_sighup_reload_changes_policy(daemons):
    relay = Relay(daemons, "max-recipients 1;")
    c = relay.connect()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@client.test>")
    assert c.cmd("RCPT TO:<one@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<two@example.test>")[0] == 452
    c.close()
    relay.extra = "max-recipients 5;"
    with open(relay.conf, "w") as f:
        f.write(relay.config_text())
    relay.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: "configuration reloaded" in relay.d.log(), 5, "reload")
    c = relay.connect()
    c.cmd("EHLO client.test")
    c.cmd("MAIL FROM:<a@client.test>")
    assert c.cmd("RCPT TO:<one@example.test>")[0] == 250
    assert c.cmd("RCPT TO:<two@example.test>")[0] == 250


def test_relayctl_stats_text_and_json(relay):
    assert swaks(relay, "--to", "u@example.test").returncode == 0
    text = relay.ctl("stats").stdout
    assert "{" not in text, text
    lines = text.splitlines()
    rows = dict(re.fullmatch(r" *([a-z_]+): (\S.*)", l).groups() for l in lines)
    # Names right-aligned: the colons and the values line up.
    assert len({l.index(": ") for l in lines}) == 1, text
    assert rows["messages"] == "1" and rows["recipients_pending"] == "1"
    assert rows["daemon"] == "running" and rows["accepting"] == "yes"
    assert rows["sessions_max"] == "100" and rows["messages_queued"] == "1"
    st = relay.ctl_json("stats")
    assert set(st) == {"queue", "daemon"} and st["queue"]["messages"] == 1


def test_relayctl_json_errors(relay):
    r = relay.ctl("--json", "show", "0123456789abcdef", check=False)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": "0123456789abcdef: no such message"}
    r = relay.ctl("--json", "bogus", check=False)
    assert r.returncode == 64 and json.loads(r.stdout) == {"error": "unknown command 'bogus'"}
    relay.d.stop()
    r = relay.ctl("--json", "flush", check=False)
    assert r.returncode == 69 and "does not answer" in json.loads(r.stdout)["error"]
