"""Spare files (docs/queue-format.md): the queue file of a delivered
message is kept in tmp/ as spare.N and overwritten by the next commit
instead of unlinked and created anew.  What a user checks: every message
still arrives whole, whatever size the spare it overwrote had (a large one
first, small ones in the middle, one above the 64 KiB bound last); at most
64 KiB spares are kept; `smtp-relayctl analyze` beside the running daemon
finds nothing stale; a restart removes the spares and starts clean."""
import os

import mxb
import resolver_util as ru
from delivery_util import DeliveryRelay, Sink, message

MX = "127.0.0.43"
REMOTE = f"""
@         MX 10 mx
mx        A {MX}
"""


def body(n, fill):
    line = (fill * 70 + "\r\n")
    return line * (n // len(line) + 1)


def send_one(relay, rcpt, text):
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, reply = c.transaction("alice@client.test", [rcpt],
                                message("alice@client.test", [rcpt], subject=rcpt, body=text))
    c.cmd("QUIT")
    c.close()
    assert code == 250, reply


def delivered_bodies(sink):
    out = {}
    for m in sink.messages:
        head, _, rest = m["data"].partition(b"\r\n\r\n")
        out[m["rcpts"][0]] = rest.decode()
    return out


def spare_sizes(relay):
    tmp = os.path.join(relay.spool, "tmp")
    return [os.path.getsize(os.path.join(tmp, f)) for f in relay.spare_files()]


def test_spares_overwritten_whole_bounded_and_cleaned_at_restart(daemons):
    port = mxb.free_port(MX)
    sink = Sink(MX, port)
    try:
        dns = ru.start_nsd(daemons, {"remote.test": ru.zone_text("remote.test", REMOTE)})
        relay = DeliveryRelay(daemons, dns, zones=("remote.test",),
                              extra=f"remote-port {port}; max-message-size 1M;")
        # Sizes: the interesting one (a 40 KB file to be overwritten by
        # small ones) first, small ones in the middle, one above the bound.
        sizes = [40000, 300, 2000, 300, 150000, 300, 9000]
        sent = {}
        for i, n in enumerate(sizes):
            rcpt = f"u{i}@remote.test"
            sent[rcpt] = body(n, chr(ord("a") + i))
            send_one(relay, rcpt, sent[rcpt])
            # One at a time: each commit after the first may take the spare
            # the previous delivery left.
            sink.wait_messages(i + 1, relay=relay)
            mxb.wait_until(lambda: relay.queue_files() == [], 10, "an empty queue",
                           proc=relay.d.proc)
        got = delivered_bodies(sink)
        for rcpt, text in sent.items():
            assert got[rcpt] == text, f"{rcpt}: {len(got[rcpt])} octets, sent {len(text)}"
        queue = relay.status()["queue"]
        assert queue["spare_files_reused"] >= len(sizes) - 2, queue
        spares = spare_sizes(relay)
        assert spares, "no spare file kept after deliveries"
        assert all(s <= 64 * 1024 for s in spares), spares
        an = relay.ctl_json("analyze")
        assert an["stale"] == 0 and an["damaged"] == 0, an

        # A restart removes the spares (never "stale") and commits afresh.
        relay.d.stop()
        relay.start()
        assert relay.spare_files() == []
        assert "removed 0 stale" in relay.d.log(), relay.d.log()[-1500:]
        send_one(relay, "after@remote.test", "after the restart\r\n")
        sink.wait_messages(len(sizes) + 1, relay=relay)
        assert delivered_bodies(sink)["after@remote.test"] == "after the restart\r\n"
    finally:
        sink.close()
