"""Crash safety of delivery: smtp-source sends 2,000 messages through
smtp-relayd to a counting sink while the relay is killed with SIGKILL
several times and restarted.  After recovery every message that got a 250
was delivered at least once; duplicates are allowed and reported."""
import collections
import os
import random
import re

import mxb
import resolver_util as ru
from conftest import require_tool
from delivery_util import DeliveryRelay, Sink
from relay_util import smtp_source_round

TOTAL = 2000
KILLS = 3
GW = "127.0.0.31"
RECEIVED_ID = re.compile(rb"with E?SMTP id ([0-9a-f]{16})")


def delivered_ids(sink):
    ids = []
    for m in list(sink.messages):
        found = RECEIVED_ID.search(m["data"][:400])
        assert found, m["data"][:200]
        ids.append(found.group(1).decode())
    return ids


def test_sigkill_during_delivery_loses_nothing(daemons):
    source = require_tool("smtp-source")
    port = mxb.free_port()
    sink = Sink(GW, port)
    # No DNS is asked: everything goes to the gateway literal.
    relay = DeliveryRelay(daemons, ru.dead_port(), gateway=f"[{GW}]", zones=("remote.test",),
                          extra=f"remote-port {port}; retry-interval 1h; "
                                "max-deliveries 20; max-deliveries-per-destination 20;")
    try:
        rng = random.Random(3464)
        acked = []
        for rnd in range(KILLS + 1):
            if rnd > 0:
                relay.start()
            # Each round sends what is still missing of TOTAL; all but the
            # last are cut by a SIGKILL after 100-300 more acknowledgements.
            left = TOTAL - len(acked)
            kill_after = rng.randint(100, 300) if rnd < KILLS else None
            got = smtp_source_round(relay, source, left,
                                    os.path.join(relay.dir, f"source{rnd}.log"), kill_after,
                                    rcpt="rcpt@outside.example")
            if kill_after is not None:
                assert kill_after <= len(got) < left, "the kill did not land during the load"
            else:
                assert len(got) == left
            acked += got
        assert len(set(acked)) == len(acked)
        relay.start()
        relay.ctl("flush")  # anything deferred by a connection cut in the kill
        mxb.wait_until(lambda: relay.queue_files() == [], 120, "the queue to drain",
                       proc=relay.d.proc)
        got = delivered_ids(sink)
        missing = set(acked) - set(got)
        assert not missing, f"{len(missing)} acknowledged messages never delivered"
        counts = collections.Counter(got)
        dups = sum(c - 1 for c in counts.values())
        print(f"\ncrash test: {len(acked)} acknowledged, {len(got)} deliveries, "
              f"{len(counts)} distinct, {dups} duplicates after {KILLS} SIGKILLs")
        # A kill can repeat at most the deliveries in hand (runs in flight).
        assert dups <= KILLS * 40
        assert relay.queue_files("corrupt") == []
    finally:
        sink.close()
