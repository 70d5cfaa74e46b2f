"""delivery: smtp-relayd routes queued mail with the resolver (NSD on
loopback as the DNS) to SMTP sinks on 127.0.0.x (all on one port, the
relay's remote-port), bounces with RFC 3464 reports, retries, and delivers
local-alias domains into Maildir."""
import os
import re
import time

import pytest

import mxb
import resolver_util as ru
from delivery_util import DeliveryRelay, Sink, parse, send

# Each next hop has its own loopback address; nothing listens on MX1.
MX1, MX2, MX3, MX4, SENDER_MX, GW = (f"127.0.0.{n}" for n in (21, 22, 23, 24, 25, 26))

REMOTE = f"""
@         MX 10 mx1
@         MX 20 mx2
mx1       A {MX1}
mx2       A {MX2}
tempfail  MX 10 mx3
mx3       A {MX3}
mixed     MX 10 mx4
mx4       A {MX4}
dead      MX 10 mx1
dual      MX 10 mxd
mxd       A {MX4}
mxd       AAAA 2001:db8::25
"""
SENDER = f"""
@         MX 10 mx
mx        A {SENDER_MX}
"""


class World:
    """NSD with remote.test and sender.test, a sink per next hop, the relay."""

    def __init__(self, daemons, extra=""):
        self.port = mxb.free_port()
        self.dns = ru.start_nsd(daemons, {
            "remote.test": ru.zone_text("remote.test", REMOTE),
            "sender.test": ru.zone_text("sender.test", SENDER),
        })
        self.sinks = {h: Sink(h, self.port) for h in (MX2, MX3, MX4, SENDER_MX, GW)}
        self.relay = DeliveryRelay(
            daemons, self.dns, gateway=f"[{GW}]",
            extra=f"remote-port {self.port}; retry-interval 1h; {extra}")

    def close(self):
        for s in self.sinks.values():
            s.close()

    def wait_empty(self, timeout=20):
        mxb.wait_until(lambda: self.relay.queue_files() == [], timeout, "an empty queue",
                       proc=self.relay.d.proc)


@pytest.fixture
def world(daemons):
    w = World(daemons)
    yield w
    w.close()


def test_outbound_source_address(daemons):
    """outbound-source: the next hop sees the configured address, also after
    the first MX (nothing listens there) refused the connection."""
    w = World(daemons, extra="outbound-source { 127.0.0.9; };")
    try:
        send(w.relay, "alice@sender.test", ["user@remote.test"], subject="source")
        w.sinks[MX2].wait_messages(1, relay=w.relay)
        w.wait_empty()
        assert set(w.sinks[MX2].peers) == {"127.0.0.9"}, w.sinks[MX2].peers
    finally:
        w.close()


def test_outbound_family(daemons):
    """outbound-family: ipv4 delivers to the A of a next hop that also has
    an (unreachable) AAAA; ipv6 never connects to an IPv4 address."""
    w = World(daemons, extra="outbound-family ipv4;")
    try:
        send(w.relay, "alice@sender.test", ["user@dual.remote.test"], subject="v4")
        w.sinks[MX4].wait_messages(1, relay=w.relay)
        w.wait_empty()
    finally:
        w.close()
    w = World(daemons, extra="outbound-family ipv6;")
    try:
        qid = send(w.relay, "alice@sender.test", ["user@remote.test"], subject="v6")
        mxb.wait_until(lambda: f"{qid}: to=<user@remote.test>" in w.relay.d.log(), 20,
                       "the attempt to be logged")
        assert w.sinks[MX2].connections == 0 and w.sinks[MX2].messages == []
        tried = [l for l in w.relay.d.log().splitlines() if f"{qid}: to=" in l]
        assert tried and not any("result=delivered" in l for l in tried), tried
    finally:
        w.close()


def log_lines(relay, qid):
    return [l for l in relay.d.log().splitlines() if f"delivery: {qid}: to=" in l]


def test_mx_fallback_delivers_exact_message(world):
    sink = world.sinks[MX2]
    qid = send(world.relay, "alice@sender.test", ["user@remote.test"], subject="fallback",
               body="line one\r\n..leading dot\r\n...two dots\r\n")  # stuffed on the wire
    msgs = sink.wait_messages(1, relay=world.relay)
    world.wait_empty()
    m = msgs[0]
    assert m["sender"] == "alice@sender.test"
    assert m["rcpts"] == ["user@remote.test"]
    assert "SIZE=" in m["params"]
    data = m["data"]
    assert data.startswith(b"Received: from client.test")
    assert f"id {qid}".encode() in data.split(b"\r\n\r\n")[0]
    # The relay un-stuffs, queues, stuffs again; the sink un-stuffs.
    assert data.endswith(b"\r\n\r\nline one\r\n.leading dot\r\n..two dots\r\n")
    assert parse(data)["Subject"] == "fallback"
    lines = log_lines(world.relay, qid)
    assert any(f"hop=mx1.remote.test addr={MX1} result=deferred" in l for l in lines), lines
    assert any(f"hop=mx2.remote.test addr={MX2} result=delivered" in l for l in lines), lines
    assert all(re.search(r"delay=\d+s", l) for l in lines)
    st = world.relay.delivery()
    assert st["delivered"] == 1 and st["bounced"] == 0
    assert st["hops"]["mx2.remote.test"]["delivered"] == 1
    assert st["hops"]["mx1.remote.test"]["deferred"] == 1
    assert world.relay.status()["queue"]["messages"] == 0


def test_tempfail_deferred_then_flush_delivers(world):
    sink = world.sinks[MX3]
    sink.data_reply = "451 4.3.0 try again later"
    qid = send(world.relay, "alice@sender.test", ["bob@tempfail.remote.test"])

    rc = world.relay.wait_attempted(qid)
    assert rc["last_error"].startswith("451 4.3.0"), rc
    assert rc["next_retry"] >= rc["last_attempt"] + 3600 - 5
    assert sink.messages == []
    assert world.relay.delivery()["deferred"] == 1
    sink.data_reply = "250 2.0.0 fine now"
    world.relay.ctl("flush", qid)
    sink.wait_messages(1, relay=world.relay)
    world.wait_empty()
    # The file goes (unlink, fsync of queue/) before the loop counts the
    # run: wait for the counter rather than read it at once.
    mxb.wait_until(lambda: world.relay.delivery()["delivered"] == 1, 5, "delivered counted",
                   proc=world.relay.d.proc)
    assert world.relay.delivery()["deferred"] == 1


def dsn_parts(data):
    """(message/delivery-status per-recipient fields, the report message)."""
    msg = parse(data)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain", "message/delivery-status", "text/rfc822-headers"]
    status = parts[1]
    # email parses message/delivery-status as a list of header blocks.
    blocks = status.get_payload()
    return blocks, msg, parts


def test_one_of_two_bounced_with_rfc3464_report(world):
    good, bad = "good@mixed.remote.test", "bad@mixed.remote.test"
    world.sinks[MX4].rcpt_replies[bad] = "550 5.1.1 <bad@mixed.remote.test>: no such user"
    qid = send(world.relay, "alice@sender.test", [good, bad], subject="half")
    msgs = world.sinks[MX4].wait_messages(1, relay=world.relay)
    assert msgs[0]["rcpts"] == [good]
    dsn = world.sinks[SENDER_MX].wait_messages(1, relay=world.relay)[0]
    world.wait_empty()
    assert dsn["sender"] == "" and dsn["rcpts"] == ["alice@sender.test"]
    blocks, msg, parts = dsn_parts(dsn["data"])
    assert msg["To"] == "alice@sender.test"
    assert blocks[0]["Reporting-MTA"] == "dns; relay.test"
    rcpt = blocks[1]
    assert rcpt["Final-Recipient"] == f"rfc822; {bad}"
    assert rcpt["Action"] == "failed"
    assert rcpt["Status"] == "5.1.1"
    assert rcpt["Remote-MTA"] == "dns; mx4.remote.test"
    assert rcpt["Diagnostic-Code"].startswith("smtp; 550 5.1.1")
    assert len(blocks) == 2
    assert b"Subject: half" in parts[2].as_bytes()
    assert f"id {qid}".encode() in parts[2].as_bytes()
    st = world.relay.delivery()
    assert st["delivered"] == 2 and st["bounced"] == 1 and st["dsn_sent"] == 1


def test_gateway_and_local_maildir(world):
    send(world.relay, "alice@sender.test", ["someone@outside.example"], subject="gw")
    m = world.sinks[GW].wait_messages(1, relay=world.relay)[0]
    assert m["rcpts"] == ["someone@outside.example"]
    qid = send(world.relay, "alice@sender.test", ["Carol@mail.example.test"],
               subject="local", body="for carol\r\n")
    new = os.path.join(world.relay.maildir("carol"), "new")
    mxb.wait_until(lambda: os.path.isdir(new) and os.listdir(new), 20, "a Maildir file",
                   proc=world.relay.d.proc)
    world.wait_empty()
    files = os.listdir(new)
    assert len(files) == 1
    assert os.listdir(os.path.join(world.relay.maildir("carol"), "tmp")) == []
    with open(os.path.join(new, files[0]), "rb") as f:
        data = f.read()
    assert data.startswith(b"Return-Path: <alice@sender.test>\nDelivered-To: Carol@mail.example.test\n")
    assert b"\r\n" not in data
    assert f"id {qid}".encode() in data
    assert data.endswith(b"\n\nfor carol\n")
    assert any("hop=local addr=maildir result=delivered" in l
               for l in log_lines(world.relay, qid))


def test_null_sender_failure_goes_to_postmaster(world):
    bad = "bad@mixed.remote.test"
    world.sinks[MX4].rcpt_replies[bad] = "550 5.1.1 no such user"
    send(world.relay, "", [bad], subject="from-null")
    new = os.path.join(world.relay.maildir("postmaster"), "new")
    mxb.wait_until(lambda: os.path.isdir(new) and os.listdir(new), 20,
                   "a report in postmaster's Maildir", proc=world.relay.d.proc)
    world.wait_empty()
    with open(os.path.join(new, os.listdir(new)[0]), "rb") as f:
        data = f.read()
    assert data.startswith(b"Return-Path: <>\n")
    blocks, msg, _ = dsn_parts(data.replace(b"\n", b"\r\n"))
    assert blocks[1]["Final-Recipient"] == f"rfc822; {bad}"
    assert world.sinks[SENDER_MX].messages == []


def test_route_failure_bounces_with_resolver_status(world):
    send(world.relay, "alice@sender.test", ["x@nx.remote.test"], subject="nx")
    dsn = world.sinks[SENDER_MX].wait_messages(1, relay=world.relay)[0]
    world.wait_empty()
    blocks, _, _ = dsn_parts(dsn["data"])
    rcpt = blocks[1]
    assert rcpt["Final-Recipient"] == "rfc822; x@nx.remote.test"
    assert rcpt["Status"].startswith("5.")
    assert "Remote-MTA" not in rcpt


def test_queue_lifetime_gives_up(daemons):
    w = World(daemons, extra="queue-lifetime 1s;")
    try:
        w.sinks[MX3].data_reply = "451 4.3.0 never"
        qid = send(w.relay, "alice@sender.test", ["bob@tempfail.remote.test"], subject="old")
        w.relay.wait_attempted(qid)
        # Older than queue-lifetime: the next attempt is the last one.  Ages
        # are whole seconds: at arrival + 3 the message is surely 2 s old
        # (t0 + 2.1 was not when the SMTP transaction itself took 0.2 s).
        arrival = w.relay.ctl_json("show", qid)["arrival"]
        mxb.wait_until(lambda: time.time() >= arrival + 3, 10, "the lifetime to pass")
        w.relay.ctl("flush", qid)
        dsn = w.sinks[SENDER_MX].wait_messages(1, relay=w.relay)[0]
        w.wait_empty()
        blocks, _, _ = dsn_parts(dsn["data"])
        assert blocks[1]["Action"] == "failed"
        assert blocks[1]["Status"] == "4.3.0"
    finally:
        w.close()


def test_restart_reschedules_the_queue(world):
    sink = world.sinks[MX3]
    sink.data_reply = "451 4.3.0 not yet"
    qid = send(world.relay, "alice@sender.test", ["bob@tempfail.remote.test"])
    world.relay.wait_attempted(qid)
    world.relay.d.stop()
    sink.data_reply = "250 2.0.0 ok"
    world.relay.start()
    world.relay.ctl("flush")
    sink.wait_messages(1, relay=world.relay)
    world.wait_empty()


def test_hold_delivery_then_reload_releases(daemons):
    w = World(daemons, extra="hold-delivery yes;")
    try:
        qid = send(w.relay, "alice@sender.test", ["user@remote.test"], subject="held")
        world_extra = w.relay.extra
        # Held: queued, never attempted, flush is a no-op.
        w.relay.ctl("flush")
        mxb.wait_until(lambda: "delivery: held" in w.relay.d.log(), 10, "the hold log line")
        assert w.relay.ctl_json("show", qid)["recipients"][0]["attempts"] == 0
        assert w.sinks[MX2].messages == []
        w.relay.reload(world_extra.replace("hold-delivery yes;", "hold-delivery no;"))
        w.sinks[MX2].wait_messages(1, relay=w.relay)
        w.wait_empty()
        assert w.relay.delivery()["delivered"] == 1
    finally:
        w.close()


def test_8bitmime_to_a_peer_without_it_passes_unchanged(world):
    sink = world.sinks[MX3]
    sink.eightbit = False
    sink.pipelining = False
    body = "Subject: caf\u00e9\r\n\r\nna\u00efve \u00fcml\u00e4ut\r\n".encode("utf-8")
    c = world.relay.connect()
    c.cmd("EHLO client.test")
    assert c.cmd("MAIL FROM:<alice@sender.test> BODY=8BITMIME")[0] == 250
    assert c.cmd("RCPT TO:<bob@tempfail.remote.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(body + b".\r\n")
    assert c.reply()[0] == 250
    c.close()
    m = sink.wait_messages(1, relay=world.relay)[0]
    assert "BODY=" not in m["params"], m["params"]
    assert m["data"].endswith(body)


def test_delay_notice_once(daemons):
    # Ages are whole seconds (arrival at x.95 is "1 s old" at x+1.05): with
    # delay-warning 1s a first attempt a tenth of a second late on a busy
    # machine was already "after delay-warning".  3 s leaves it 2 s.
    w = World(daemons, extra="delay-warning 3s;")
    try:
        w.sinks[MX3].data_reply = "451 4.3.0 busy"
        qid = send(w.relay, "alice@sender.test", ["bob@tempfail.remote.test"], subject="slow")
        w.relay.wait_attempted(qid)
        assert w.sinks[SENDER_MX].messages == []  # younger than delay-warning
        # Whole seconds again: at arrival + 4 the message is surely 3 s old.
        arrival = w.relay.ctl_json("show", qid)["arrival"]
        mxb.wait_until(lambda: time.time() >= arrival + 4, 10, "delay-warning to pass")
        w.relay.ctl("flush", qid)
        dsn = w.sinks[SENDER_MX].wait_messages(1, relay=w.relay)[0]
        blocks, msg, _ = dsn_parts(dsn["data"])
        assert msg["Subject"] == "Delayed Mail (still being retried)"
        assert blocks[1]["Action"] == "delayed" and blocks[1]["Status"] == "4.3.0"
        assert w.relay.ctl_json("show", qid)["recipients"][0]["state"] == "pending"
        w.relay.ctl("flush", qid)
        w.relay.wait_attempted(qid, 3)
        mxb.wait_until(lambda: w.relay.queue_files() == [qid], 10, "the notice delivered")
        assert len(w.sinks[SENDER_MX].messages) == 1, "one notice only"
    finally:
        w.close()


def metrics_text(relay):
    code, _, body = mxb.http_get("127.0.0.1", relay.status_port, "/metrics")
    assert code == 200
    return body


def metric(body, name, labels=""):
    m = re.search(r"^mxbroker_%s%s (\S+)$" % (name, re.escape(labels)), body, re.M)
    assert m, f"{name}{labels} not in /metrics:\n{body}"
    return float(m.group(1))


def test_stuck_queue_metrics_with_a_dead_next_hop(world):
    """A next hop that refuses connections: /metrics shows the message
    deferred, its age growing, and the outcome counted under reason connect;
    a 4xx from a live hop counts under 4xx."""
    world.sinks[MX3].data_reply = "451 4.3.0 try again later"
    dead = send(world.relay, "alice@sender.test", ["bob@dead.remote.test"])
    soft = send(world.relay, "alice@sender.test", ["bob@tempfail.remote.test"])

    for qid in (dead, soft):
        world.relay.wait_attempted(qid)
    body = metrics_text(world.relay)
    assert "# TYPE mxbroker_relay_queue_messages gauge" in body
    assert metric(body, "relay_queue_messages", '{state="deferred"}') == 2
    assert metric(body, "relay_queue_messages", '{state="active"}') == 0
    assert metric(body, "relay_queue_messages", '{state="hold"}') == 0
    age = metric(body, "relay_queue_oldest_message_age_seconds")
    assert 0 < age < 60
    assert "# TYPE mxbroker_relay_queue_oldest_message_age_seconds gauge" in body
    assert "# TYPE mxbroker_relay_deliveries_total counter" in body
    assert metric(body, "relay_deliveries_total", '{result="deferred",reason="connect"}') == 1
    assert metric(body, "relay_deliveries_total", '{result="deferred",reason="4xx"}') == 1
    assert metric(body, "relay_deliveries_total", '{result="delivered",reason="2xx"}') == 0
    # No gauge carries _total, every _total is a counter.
    for fam, typ in re.findall(r"^# TYPE (\S+) (\S+)$", body, re.M):
        assert fam.endswith("_total") == (typ == "counter"), (fam, typ)
    time.sleep(1.1)
    assert metric(metrics_text(world.relay), "relay_queue_oldest_message_age_seconds") > age


def test_flush_keeps_the_backoff_step(world):
    """A flushed attempt that fails again waits retry-interval again, not
    twice as long: the backoff step is not taken by a forced attempt."""
    qid = send(world.relay, "alice@sender.test", ["bob@dead.remote.test"])

    first = world.relay.wait_attempted(qid)
    assert 3600 - 2 <= first["next_retry"] - first["last_attempt"] <= 3600 + 2, first
    assert first["backoff"] == 1
    for n in (2, 3):
        world.relay.ctl("flush", qid)
        rc = world.relay.wait_attempted(qid, n)
        assert rc["backoff"] == 1, rc
        assert 3600 - 2 <= rc["next_retry"] - rc["last_attempt"] <= 3600 + 2, rc
