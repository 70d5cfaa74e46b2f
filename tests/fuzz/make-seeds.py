#!/usr/bin/python3
"""make-seeds.py - (re)write the seed corpora of the hardening fuzz targets
into tests/fuzz/corpus/<name>/.  Run from the top of the tree:

    /usr/bin/python3 tests/fuzz/make-seeds.py [TARGET...]

With target names, only their corpora are written.
Seeds are small, valid (or nearly valid) inputs the fuzzer mutates from;
the files are committed, this script only documents how they were made.
"""
import json
import os
import struct
import sys
import zlib

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import dns.tsigkeyring
import dns.update

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
ONLY = set(sys.argv[1:])


def put(target, name, data):
    if ONLY and target not in ONLY:
        return
    d = os.path.join(TOP, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- smtp_command: one command line without CRLF ----
for i, line in enumerate([
    "EHLO client.example.test", "HELO [192.0.2.1]", "ehlo [IPv6:2001:db8::1]",
    "MAIL FROM:<sender@example.test> SIZE=1000 BODY=8BITMIME", "MAIL FROM:<>",
    "mail from: <a.b@sub.example.test> BODY=7BIT", "RCPT TO:<user@mail.example.test>",
    "RCPT TO:<@relay1.test,@relay2.test:user@example.test>",
    'RCPT TO:<"quoted \\" user"@example.test>', "RCPT TO:<postmaster>",
    "RCPT TO:<Postmaster@Example.ORG>", "RCPT TO:<u@[192.0.2.1]>",
    "RCPT TO:<u%v@example.test>", "RCPT TO:<u!v@example.test> NOTIFY=NEVER",
    "DATA", "RSET", "NOOP", "QUIT", "VRFY user", "HELP MAIL", "STARTTLS", "AUTH PLAIN",
    "BDAT 10 LAST", "<user@example.test>", "MAIL FROM:<" + "a" * 64 + "@" + "b" * 63 + ".test>",
    "MAIL FROM:<a@b.test> AUTH=a+2Bb@c.test SIZE=9", "AUTH LOGIN dXNlcg==", "STARTTLS x",
]):
    put("smtp_command", f"line-{i:02d}", line)

# ---- smtp_session: first byte 0 = trusted client, 1 = untrusted ----
HDR = "EHLO client.example.test\r\nMAIL FROM:<s@example.test>\r\nRCPT TO:<r@example.test>\r\nDATA\r\n"
sessions = {
    "plain": HDR + "Subject: hi\r\n\r\nhello\r\n.\r\nQUIT\r\n",
    "dotstuff": HDR + "Subject: dots\r\n\r\n..leading dot\r\n.\r\n..\r\n.\r\nQUIT\r\n",
    "bare-lf": HDR + "Subject: x\r\n\r\nline\n.\r\n",
    "bare-cr": HDR + "Subject: x\r\n\r\nli\rne\r\n.\r\n",
    "smuggle": HDR + "body\r\n\n.\r\nMAIL FROM:<evil@x.test>\r\n.\r\n",
    "long-line": HDR + "x" * 1200 + "\r\n.\r\nQUIT\r\n",
    "too-big": HDR + ("y" * 78 + "\r\n") * 60 + ".\r\nQUIT\r\n",
    "loop": HDR + "Received: from a\r\n" * 101 + "\r\nbody\r\n.\r\nQUIT\r\n",
    "pipelined": "EHLO c.test\r\nMAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<postmaster>\r\n"
                 "RCPT TO:<a@mail.example.test>\r\nDATA\r\nx\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    "badseq": "DATA\r\nRCPT TO:<a@example.test>\r\nHELO x\r\nDATA\r\nVRFY a\r\nHELP\r\n",
    "twomsgs": HDR + "a\r\n.\r\nMAIL FROM:<s@example.test>\r\nRCPT TO:<t@example.test>\r\n"
               "RCPT TO:<u@example.test>\r\nDATA\r\nb\r\n.\r\nQUIT\r\n",
    "relay-denied": "HELO x\r\nMAIL FROM:<s@x.test>\r\nRCPT TO:<u@elsewhere.test>\r\n"
                    "RCPT TO:<@a.test:u@example.test>\r\nRCPT TO:<u%v@example.test>\r\nQUIT\r\n",
    "long-command": "EHLO " + "a" * 600 + "\r\nQUIT\r\n",
    "eof-in-data": HDR + "unterminated",
    "starttls-pipelined": "EHLO c.test\r\nSTARTTLS\r\nRSET\r\nHELP\r\nQUIT\r\n",
    "auth-plaintext": "EHLO c.test\r\nAUTH PLAIN AGEAYg==\r\nAUTH LOGIN\r\n"
                      "MAIL FROM:<a@b.test> AUTH=<>\r\nQUIT\r\n",
}
for name, text in sessions.items():
    put("smtp_session", name, b"\x00" + text.encode())
    if name in ("plain", "relay-denied", "pipelined"):
        put("smtp_session", name + "-untrusted", b"\x01" + text.encode())

# ---- queue: first byte even = raw file, odd = envelope wrapped by the target ----
QID = "0123456789abcdef"
CONTENT = b"Subject: fuzz\r\n\r\nbody\r\n"


def envelope(rcpts, **kw):
    env = {"version": 1, "id": QID, "arrival": 1700000000, "sender": "s@example.test",
           "client": {"address": "192.0.2.1", "helo": "client.test"}, "body": "7BIT",
           "bounce": False, "size": len(CONTENT), "recipients": rcpts}
    env.update(kw)
    return json.dumps(env).encode()


def rcpt(addr, state="pending", err=None):
    return {"address": addr, "state": state, "attempts": 1, "next_retry": 1700000600,
            "last_attempt": 1700000000, "last_error": err}


def qfile(env, content=CONTENT):
    head = b"MXBQ1 %d %d\n" % (len(env), len(content))
    body = head + env + b"\n" + content
    return body + b"END %08x\n" % (zlib.crc32(body) & 0xffffffff)


envs = {
    "one": envelope([rcpt("a@example.test")]),
    "many": envelope([rcpt("a@example.test"), rcpt("b@example.test", "delivered"),
                      rcpt("c@example.test", "failed", "550 5.1.1 no such user")]),
    "bounce": envelope([rcpt("postmaster")], sender="", bounce=True, body="8BITMIME",
                       client={"address": "local", "helo": None}),
}
for name, env in envs.items():
    put("queue", "wrapped-" + name, b"\x01" + env)
    put("queue", "raw-" + name, b"\x00" + qfile(env))
put("queue", "raw-badcrc", b"\x00" + qfile(envs["one"])[:-3] + b"0\n")
put("queue", "raw-short", b"\x00MXBQ1 10 5\n{}")

# ---- dnsmsg: replies as they come off the wire ----


def reply(qname, qtype, rcode=0, answers=(), authority=(), tc=False, qid=0x1234):
    q = dns.message.make_query(qname, qtype, use_edns=True)
    q.id = qid
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for rr in answers:
        r.answer.append(dns.rrset.from_text(*rr))
    for rr in authority:
        r.authority.append(dns.rrset.from_text(*rr))
    if tc:
        r.flags |= dns.flags.TC
    return r.to_wire()


SOA = ("example.test.", 3600, "IN", "SOA", "ns.example.test. host.example.test. 1 3600 600 86400 300")
dnsseeds = {
    "mx": reply("example.test.", "MX", answers=[("example.test.", 300, "IN", "MX",
                "10 mx1.example.test.", "20 mx2.example.test.")]),
    "mx-null": reply("example.test.", "MX", answers=[("example.test.", 300, "IN", "MX", "0 .")]),
    "mx-cname": reply("example.test.", "MX", answers=[
        ("example.test.", 60, "IN", "CNAME", "alias.example.test."),
        ("alias.example.test.", 300, "IN", "MX", "5 mx.alias.example.test.")]),
    "cname-dangling": reply("www.example.test.", "A", answers=[
        ("www.example.test.", 60, "IN", "CNAME", "gone.example.test.")]),
    "a": reply("mx1.example.test.", "A", answers=[("mx1.example.test.", 300, "IN", "A",
               "192.0.2.1", "192.0.2.2")], qid=0x4321),
    "aaaa": reply("mx1.example.test.", "AAAA", answers=[("mx1.example.test.", 300, "IN",
                  "AAAA", "2001:db8::1")], qid=7),
    "nxdomain": reply("nope.example.test.", "MX", rcode=dns.rcode.NXDOMAIN, authority=[SOA]),
    "nodata": reply("example.test.", "MX", authority=[SOA]),
    "nodata-nosoa": reply("example.test.", "MX"),
    "servfail": reply("example.test.", "MX", rcode=dns.rcode.SERVFAIL),
    "refused": reply("example.test.", "MX", rcode=dns.rcode.REFUSED),
    "truncated": reply("example.test.", "MX", tc=True),
    "loop": reply("a.example.test.", "MX", answers=[
        ("a.example.test.", 60, "IN", "CNAME", "b.example.test."),
        ("b.example.test.", 60, "IN", "CNAME", "a.example.test.")]),
    "bigttl": reply("example.test.", "MX", answers=[("example.test.", 2**31 - 1, "IN", "MX",
                    "10 mx.example.test.")]),
}
for name, wire in dnsseeds.items():
    put("dnsmsg", name, wire)

# ---- socketmap: netstring requests, pipelined ----
def ns(s):
    return b"%d:%s," % (len(s), s.encode())


for i, data in enumerate([
    ns("mxroute user@example.test"), ns("mxroute example.test"),
    ns("mxroute a@b.test") + ns("mxroute c.test") + ns("other x"),
    ns("mxroute [192.0.2.1]"), b"5:mxrou", b"0:,", b"00012:mxroute a.b,", ns("mxroute " + "a" * 1000),
]):
    put("socketmap", f"req-{i}", data)

# ---- resolver_db: local-mx and hosts files ----
put("resolver_db", "localmx", "# domain preference gateway\n"
    "example.test 10 gw1.example.test\nexample.test 20 GW2.Example.Test.\n"
    "! OpenVMS comment\nvms.test\t5\tgw.vms.test # trailing\n\n")
put("resolver_db", "hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
    "192.0.2.10 mx1.example.test mx1 # comment\n2001:db8::10 mx1.example.test\n"
    "not-an-address host\n")
put("resolver_db", "bad-localmx", "example.test 70000 gw\nexample..test 1 gw\n")

# ---- smtp_reply: first byte = message flags (bit 0 8BITMIME, bits 1-2
# recipients - 1), then what the server says, as one stream ----
GREET = "220 mx.remote.test ESMTP\r\n"
EHLO = "250-mx.remote.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n"
OK = "250 2.1.0 ok\r\n"
replies = {
    "pipelined": (0, GREET + EHLO + OK + OK + "354 go\r\n250 2.0.0 queued\r\n221 bye\r\n"),
    "plain-8bit": (1, GREET + "250-mx\r\n250 8BITMIME\r\n" + OK + OK
                   + "354 go\r\n250 queued\r\n"),
    "rcpt-mixed": (4, GREET + EHLO + OK + OK + "550 5.1.1 no such user\r\n"
                   "450 4.2.1 try later\r\n354 go\r\n250 2.0.0 queued\r\n"),
    "helo-fallback": (0, GREET + "502 5.5.1 EHLO not supported\r\n250 mx.remote.test\r\n"
                      + OK + OK + "354 go\r\n250 ok\r\n"),
    "size-too-small": (0, GREET + "250-mx\r\n250 SIZE 10\r\n"),
    "size-junk": (0, GREET + "250-mx\r\n250-SIZE 99999999999999999999999\r\n250-SIZE\r\n"
                  "250 size x\r\n" + OK + OK + "354 go\r\n250 ok\r\n"),
    "greeting-554": (0, "554 5.7.1 go away\r\n"),
    "multiline-greeting": (0, "220-mx.remote.test\r\n220-second\r\n220 third\r\n" + EHLO),
    "mail-refused": (2, GREET + EHLO + "451 4.3.0 later\r\n"),
    "data-refused": (0, GREET + EHLO + OK + OK + "554 5.5.1 no valid recipients\r\n"),
    "final-552": (0, GREET + EHLO + OK + OK + "354 go\r\n552 5.3.4 too big\r\n"),
    "bare-lf": (0, "220 mx\n250-mx\n250 PIPELINING\n250 ok\n250 ok\n354 go\n250 ok\n"),
    "bad-code": (0, "220 mx\r\n25O-mx\r\n"),
    "mixed-codes": (0, GREET + "250-mx\r\n251 PIPELINING\r\n"),
    "long-line": (0, GREET + "250-" + "x" * 5000 + "\r\n250 ok\r\n"),
    "no-space": (0, "220\r\n250\r\n250\r\n250\r\n354\r\n250\r\n"),
    "1xx-6xx": (0, "120 wait\r\n220 ok\r\n650 what\r\n"),
}
for name, (flags, text) in replies.items():
    put("smtp_reply", name, bytes([flags]) + text.encode())

# ---- mta_sts: first byte = parser (0 policy body, 1 TXT record, 2 cache
# file for example.test), then the text ----
POLICY = ("version: STSv1\r\nmode: enforce\r\nmx: mail.example.test\r\n"
          "mx: *.example.net\r\nmax_age: 604800\r\n")
sts = {
    "policy-enforce": (0, POLICY),
    "policy-testing-lf": (0, "version: STSv1\nmode: testing\nmx: MX.Example.Test.\nmax_age: 86400"),
    "policy-none": (0, "version: STSv1\nmode: none\nmax_age: 0\n"),
    "policy-unknown-keys": (0, "version:STSv1\n\nfoo: bar\nmode: enforce\nmode: none\n"
                            "mx: a.example\nmax_age: 31557600\n"),
    "policy-bad-max-age": (0, "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n"),
    "policy-bad-mx": (0, "version: STSv1\nmode: enforce\nmx: *.*.example\nmax_age: 1\n"),
    "txt-good": (1, "v=STSv1; id=20160831085700Z;"),
    "txt-ext": (1, "v=STSv1 ;id=abc ; ext=x.y ;"),
    "txt-other": (1, "v=spf1 -all"),
    "txt-no-id": (1, "v=STSv1;"),
    "cache-good": (2, "mxbroker-mta-sts 1\ndomain: example.test\nfetched: 1700000000\n"
                   "id: 2026abc\n\n" + POLICY.replace("\r", "")),
    "cache-other-domain": (2, "mxbroker-mta-sts 1\ndomain: example.org\nfetched: 1\nid: a\n\n"
                           "version: STSv1\nmode: none\nmax_age: 1\n"),
}
for name, (kind, text) in sts.items():
    put("mta_sts", name, bytes([kind]) + text.encode())

# ---- zone: a zone file for the origin fuzz.test. ----
ZHEAD = "$ORIGIN fuzz.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\n"
zones = {
    "full": ZHEAD + "ns1 A 192.0.2.1\nns1 AAAA 2001:db8::1\n@ MX 10 smtp\n"
            "@ TXT \"v=spf1 -all\"\nsmtp A 192.0.2.11\nsmtp A 192.0.2.12\n"
            "smtp A 192.0.2.13\nalias CNAME smtp\nchain CNAME alias\n"
            "out CNAME elsewhere.example.\n*.wild A 192.0.2.50\n*.wild TXT \"wildcard\"\n"
            "sub NS ns.sub\nns.sub A 192.0.2.53\n_srv._tcp SRV 0 5 25 smtp\n",
    "relative-ttl": "$TTL 1h\n@ 1d IN SOA ns1.fuzz.test. h.fuzz.test. (\n 2024010101 ; serial\n"
                    " 1h 15m 1w 1m )\n  NS ns1\nns1 A 192.0.2.1\n",
    "include-self": ZHEAD + "ns1 A 192.0.2.1\n$INCLUDE zone\n",
    "no-soa": "$ORIGIN fuzz.test.\n@ 300 NS ns1\nns1 300 A 192.0.2.1\n",
    "two-soa": ZHEAD + "@ SOA ns2 h 2 1 1 1 1\nns1 A 192.0.2.1\n",
    "outside": ZHEAD + "ns1 A 192.0.2.1\nother.example. A 192.0.2.2\n",
    "cname-and-data": ZHEAD + "ns1 A 192.0.2.1\nx CNAME ns1\nx A 192.0.2.3\n",
    "cname-loop": ZHEAD + "ns1 A 192.0.2.1\na CNAME b\nb CNAME a\n",
    "big-rrset": ZHEAD + "ns1 A 192.0.2.1\n"
                 + "".join(f"many A 10.0.{i // 250}.{i % 250 + 1}\n" for i in range(300)),
    "long-names": ZHEAD + "ns1 A 192.0.2.1\n" + ".".join(["a" * 63] * 3) + " TXT \""
                  + "t" * 255 + "\"\n",
    "syntax": ZHEAD + "ns1 A 999.1.1.1\n( unbalanced\n",
    "crlf": ZHEAD.replace("\n", "\r\n") + "ns1 A 192.0.2.1\r\n",
}
for name, text in zones.items():
    put("zone", name, text)

# ---- dns_response: flags (bit 0 TSIG key, 1 manage A, 2 manage AAAA,
# 3 keep the ID), then the master's answers, each <length><message>;
# flags 0x80: one answer to a NOTIFY ----
CL = "mx.fuzz.test."
KEYRING = dns.tsigkeyring.from_text({"update-key.fuzz.test.": (
    "hmac-sha256", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAx")})


def frame(*msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def update_answer(rcode=0, signed=False):
    u = dns.update.UpdateMessage("fuzz.test.")
    if signed:
        u.use_tsig(KEYRING, keyname="update-key.fuzz.test.", algorithm="hmac-sha256")
        u.to_wire()
    r = dns.message.make_response(u)
    r.set_rcode(rcode)
    return r.to_wire()


ZSOA = ("fuzz.test.", 300, "IN", "SOA", "ns1.fuzz.test. h.fuzz.test. 1 3600 900 604800 60")
soa_ans = reply(CL, "SOA", authority=[ZSOA])
a_same = reply(CL, "A", answers=[(CL, 300, "IN", "A", "192.0.2.1", "192.0.2.2")])
a_diff = reply(CL, "A", answers=[(CL, 300, "IN", "A", "192.0.2.9")])
aaaa_diff = reply(CL, "AAAA", rcode=dns.rcode.NXDOMAIN, authority=[ZSOA])
responses = {
    "in-sync": (2, frame(soa_ans, a_same)),
    "update-ok": (2, frame(soa_ans, a_diff, update_answer())),
    "update-both": (6, frame(soa_ans, a_diff, aaaa_diff, update_answer())),
    "update-refused": (2, frame(soa_ans, a_diff, update_answer(dns.rcode.REFUSED))),
    "update-notauth-signed": (3, frame(soa_ans, a_diff,
                                       update_answer(dns.rcode.NOTAUTH, signed=True))),
    "update-signed": (3, frame(soa_ans, a_diff, update_answer(signed=True))),
    "unsigned-answer": (3, frame(soa_ans, a_diff, update_answer())),
    "no-soa": (2, frame(reply(CL, "SOA"))),
    "soa-in-answer": (4, frame(reply(CL, "SOA", answers=[ZSOA]), aaaa_diff,
                               update_answer())),
    "servfail": (2, frame(soa_ans, reply(CL, "A", rcode=dns.rcode.SERVFAIL))),
    "wrong-id": (10, frame(soa_ans)),
    "short": (2, frame(b"\x00\x00\x80", soa_ans[:20])),
}
for name, (flags, data) in responses.items():
    put("dns_response", name, bytes([flags]) + data)


def notify_answer(zone="fuzz.test.", rcode=0, question=True, qid=0x1234, opcode=4):
    q = dns.message.make_query(zone, "SOA")
    q.id = qid
    q.set_opcode(opcode)
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if not question:
        r.question = []
    return r.to_wire()


notifies = {
    "notify-ack": notify_answer(),
    "notify-ack-case": notify_answer("FuZz.TeSt."),
    "notify-other-zone": notify_answer("other.test."),
    "notify-notauth": notify_answer(rcode=dns.rcode.NOTAUTH, question=False),
    "notify-noerror-noquestion": notify_answer(question=False),
    "notify-not-notify": notify_answer(opcode=0),
    "notify-short": notify_answer()[:11],
}
for name, wire in notifies.items():
    put("dns_response", name, b"\x80" + wire)
