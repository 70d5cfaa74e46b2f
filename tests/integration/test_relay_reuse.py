"""Outbound connection reuse and destination concurrency: many messages to
one next hop share few connections (counted at the receiving end by
Postfix's smtp-sink), an idle connection ends within connection-reuse-time,
a peer that hangs up between messages costs no message, and the slow start
window stays low against a failing next hop and grows to the cap against a
good one (/status)."""
import re
import subprocess
import time

import pytest

import mxb
import resolver_util as ru
from delivery_util import DeliveryRelay, GreetingFailer, ReuseSink, send

MX_GOOD, MX_BAD = "127.0.0.41", "127.0.0.42"
REMOTE = f"""
@         MX 10 mx
mx        A {MX_GOOD}
bad       MX 10 mxbad
mxbad     A {MX_BAD}
"""
CAP, INITIAL, REUSE_TIME = 4, 2, 2


def relay_for(daemons, port, extra=""):
    dns = ru.start_nsd(daemons, {"remote.test": ru.zone_text("remote.test", REMOTE)})
    return DeliveryRelay(
        daemons, dns, zones=("remote.test",),
        extra=(f"remote-port {port}; retry-interval 1h; "
               f"max-deliveries-per-destination {CAP}; "
               f"initial-destination-concurrency {INITIAL}; "
               f"connection-reuse-time {REUSE_TIME}s; {extra}"))


def metric(relay, name, labels):
    text = mxb.http_get("127.0.0.1", relay.status_port, "/metrics")[2]
    m = re.search(rf"^mxbroker_{name}{{{re.escape(labels)}}} (\d+)$", text, re.M)
    assert m, f"{name}{{{labels}}} not in /metrics"
    return int(m.group(1))


def wait_empty(relay, timeout=60):
    mxb.wait_until(lambda: relay.queue_files() == [], timeout, "an empty queue",
                   proc=relay.d.proc)


def test_hundred_messages_few_connections_smtp_sink(daemons, tmp_path):
    port = mxb.free_port(MX_GOOD)
    out = open(tmp_path / "sink.out", "wb")
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"{MX_GOOD}:{port}", "64"],
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        mxb.wait_until(mxb.tcp_open(MX_GOOD, port), 10, "smtp-sink listening")
        relay = relay_for(daemons, port)
        for i in range(100):
            send(relay, "alice@client.test", [f"u{i}@remote.test"])
        wait_empty(relay)

        def counters():
            with open(tmp_path / "sink.out", "rb") as f:
                last = f.read().split(b"\r")[-2:]
            m = [re.search(rb"sess=(\d+) quit=(\d+) mesg=(\d+)", x) for x in last]
            m = [x for x in m if x]
            return tuple(int(v) for v in m[-1].groups()) if m else (0, 0, 0)
        mxb.wait_until(lambda: counters()[2] >= 100, 20, "100 messages at smtp-sink")
        # Sessions are counted when they end: after the idle time.
        new = metric(relay, "relay_connections_total", 'kind="new"')
        # smtp-sink also counts the readiness probe's session: one more.
        mxb.wait_until(lambda: counters()[0] >= new + 1, REUSE_TIME + 5,
                       f"{new} idle sessions ended: {counters()}")
        sess, quits, mesg = counters()
        sess -= 1  # the probe
        assert mesg == 100
        assert 1 <= sess <= CAP, (sess, quits, mesg)
        assert metric(relay, "relay_connections_total", 'kind="new"') == sess
        assert metric(relay, "relay_connections_total", 'kind="reused"') == 100 - sess
        log = relay.d.log()
        assert re.search(r"delivery: reusing connection to mx\.remote\.test\[127\.0\.0\.41\]"
                         rf":{port} \(use \d+\)", log), log[-2000:]
        assert "result=deferred" not in log
    finally:
        sink.terminate()
        sink.wait(10)
        out.close()


@pytest.fixture
def good(daemons):
    port = mxb.free_port(MX_GOOD)
    sink = ReuseSink(MX_GOOD, port)
    yield sink, port
    sink.close()


def test_idle_connection_ends_within_reuse_time(daemons, good):
    sink, port = good
    relay = relay_for(daemons, port)
    send(relay, "alice@client.test", ["one@remote.test"])
    sink.wait_messages(1, relay=relay)
    delivered = time.monotonic()
    mxb.wait_until(lambda: sink.count("QUIT") >= 1, REUSE_TIME + 3, "QUIT from the relay",
                   proc=relay.d.proc)
    quit_at = [t for t, w in sink.events if w == "QUIT"][0]
    assert quit_at - delivered <= REUSE_TIME + 1, quit_at - delivered
    assert sink.count("connect") == 1
    # A second message after the idle end needs a new connection: no stale reuse.
    send(relay, "alice@client.test", ["two@remote.test"])
    sink.wait_messages(2, relay=relay)
    assert sink.count("connect") == 2
    assert sink.count("RSET") == 0


def test_reused_connection_rsets_between_messages(daemons, good):
    sink, port = good
    relay = relay_for(daemons, port, extra="connection-reuse-limit 3;")
    for i in range(6):
        send(relay, "alice@client.test", [f"r{i}@remote.test"])
        sink.wait_messages(i + 1, relay=relay)
    wait_empty(relay)
    assert sink.count("connect") == 2, sink.events  # 3 messages per connection
    assert sink.count("RSET") == 4
    assert sink.count("MAIL") == 6


def test_peer_hangs_up_between_messages(daemons):
    port = mxb.free_port(MX_GOOD)
    sink = ReuseSink(MX_GOOD, port, hangup=True)
    try:
        relay = relay_for(daemons, port)
        start = time.monotonic()
        for i in range(8):
            send(relay, "alice@client.test", [f"h{i}@remote.test"])
        sink.wait_messages(8, relay=relay)
        wait_empty(relay)
        assert time.monotonic() - start < 20
        log = relay.d.log()
        assert "result=deferred" not in log, log[-2000:]
        assert relay.delivery()["delivered"] == 8
        assert relay.delivery()["deferred"] == 0
    finally:
        sink.close()


def test_slow_start_stays_low_against_a_failing_hop(daemons):
    port = mxb.free_port(MX_BAD)
    bad = GreetingFailer(MX_BAD, port, delay=0.4)
    try:
        relay = relay_for(daemons, port)
        for i in range(12):
            send(relay, "alice@client.test", [f"f{i}@bad.remote.test"])
        seen = []

        def sample():
            d = relay.delivery()["destinations"].get("bad.remote.test")
            if d:
                seen.append((d["concurrency"], d["active"]))
            return relay.delivery()["deferred"] >= 12
        mxb.wait_until(sample, 30, "12 deferred", proc=relay.d.proc)
        assert seen, "the destination never showed on /status"
        assert all(1 <= c <= INITIAL and a <= INITIAL for c, a in seen), seen
        assert min(c for c, _ in seen) == 1, seen  # failures shrank it
    finally:
        bad.close()


def test_slow_start_grows_to_the_cap(daemons):
    port = mxb.free_port(MX_GOOD)
    sink = ReuseSink(MX_GOOD, port, delay=0.3)
    try:
        relay = relay_for(daemons, port)
        for i in range(40):
            send(relay, "alice@client.test", [f"g{i}@remote.test"])
        seen = []

        def at_cap():
            d = relay.delivery()["destinations"].get("remote.test")
            if d:
                seen.append((d["concurrency"], d["active"]))
            return d is not None and d["concurrency"] == CAP
        mxb.wait_until(at_cap, 30, f"concurrency {CAP}", proc=relay.d.proc)
        assert all(c <= CAP and a <= CAP for c, a in seen), seen
        sink.wait_messages(40, timeout=60, relay=relay)
        wait_empty(relay)
        assert sink.count("connect") <= CAP
    finally:
        sink.close()
