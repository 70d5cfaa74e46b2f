#!/usr/bin/python3
"""make-seeds.py - (re)write the seed corpora of the hardening fuzz targets
into tests/fuzz/corpus/<name>/.  Run from the top of the tree:

    /usr/bin/python3 tests/fuzz/make-seeds.py

Seeds are small, valid (or nearly valid) inputs the fuzzer mutates from;
the files are committed, this script only documents how they were made.
"""
import json
import os
import zlib

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
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
