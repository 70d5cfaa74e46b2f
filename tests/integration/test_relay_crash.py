"""Crash safety: smtp-source sends 2,000 messages while smtp-relayd is
killed with SIGKILL several times and restarted; every message that got a
250 is in the queue afterwards and no queue file is damaged."""
import os
import random
import time

from conftest import require_tool
from relay_util import Relay, smtp_source_round

TOTAL = 2000
KILLS = 3
def test_sigkill_during_load_loses_nothing(daemons):
    source = require_tool("smtp-source")
    relay = Relay(daemons)
    rng = random.Random(5321)
    acked = []
    chunk = TOTAL // (KILLS + 1)
    for rnd in range(KILLS + 1):
        if rnd > 0:
            relay.start()
        kill_after = rng.randint(chunk // 5, chunk // 2) if rnd < KILLS else None
        got = smtp_source_round(relay, source, chunk, os.path.join(relay.dir, f"source{rnd}.log"),
                        kill_after)
        if kill_after is not None:
            assert kill_after <= len(got) < chunk, "the kill did not land during the load"
        else:
            assert len(got) == chunk
        acked += got
    assert len(set(acked)) == len(acked)
    # One more start: recovery runs over whatever the last kill left.
    t0 = time.monotonic()
    relay.start()
    listing = relay.ctl_json("list")
    in_queue = {m["id"] for m in listing["messages"]}
    missing = set(acked) - in_queue
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {sorted(missing)[:3]}"
    assert listing["damaged"] == []
    assert relay.queue_files("corrupt") == []
    assert relay.queue_files("tmp") == []
    an = relay.ctl_json("analyze")
    assert an["damaged"] == 0 and an["stale"] == 0
    assert relay.status()["queue"]["messages"] == len(in_queue)
    # Every queued file is complete: sender, recipient and content are there.
    sample = relay.ctl_json("show", sorted(acked)[len(acked) // 2])
    assert sample["sender"] == "sender@client.test"
    assert sample["recipients"][0]["address"] == "rcpt@example.test"
    assert time.monotonic() - t0 < 30
