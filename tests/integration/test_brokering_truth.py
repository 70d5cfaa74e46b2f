"""The answer tells the truth in real operation (issue 13): serials across
restarts, first answers, serial churn, reported unavailability, named key
mismatches, several keyed clusters.  Each test fails on the code before
the issue."""
import json
import os
import subprocess
import time

import dns.rdatatype
import pytest

import brokering_util as bu
import metrics_util as mu
import mxb

H = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
# polling-interval 1, dns-refresh 1; a reported state counts at the next
# poll: one interval, one refresh and slack for a loaded machine.
NEXT_POLL = 1 + 1 + 3


def three(daemons, ratings=(20, 50, 90), max_members=2, extra="", agent_extra=None, **kw):
    agents = bu.Agents(daemons, dict(zip(H, ratings)), extra=agent_extra, **kw)
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port, failover="127.0.0.19",
                                        max_members=max_members, extra=extra))
    return agents, lb


def soa_serial(lb):
    return lb.serial()


def test_serial_never_goes_back_after_restart(daemons):
    """Item 2: after changes the zone is at file + N; a restart must not
    serve file + 1 (secondaries would ignore it and keep the old set)."""
    agents, lb = three(daemons)
    lb.wait_set([H[2], H[1]], 10)
    agents.stop(H[2])               # two changes of the answered set
    lb.wait_set([H[1], H[0]], 10)
    agents.stop(H[1])
    lb.wait_set([H[0]], 10)
    before = soa_serial(lb)
    assert before >= 2024010101 + 3, before
    lb.d.stop()
    lb.start()
    after = soa_serial(lb)
    assert after >= before, (before, after)
    # And the next change moves it forward again, never back.
    agents.start(H[2])
    lb.wait_set([H[2], H[0]], 10)
    assert soa_serial(lb) > after
    state = json.load(open(os.path.join(daemons.dir, "brokerd.state")))
    assert state["zones"][bu.ORIGIN]["serial"] == soa_serial(lb)


def test_same_content_keeps_serial_over_restart(daemons):
    agents, lb = three(daemons)
    lb.wait_set([H[2], H[1]], 10)
    before = soa_serial(lb)
    lb.d.stop()
    lb.start()
    # Same members, same answer: no new serial, nothing to transfer.
    time.sleep(2.5)
    assert lb.answer_set() == {H[2], H[1]}
    assert soa_serial(lb) == before


def test_first_answers_use_dns_ttl(daemons):
    """Item 5: before the first poll round the zone file's record is the
    placeholder, answered with the cluster's dns-ttl (5), not the file's
    300, and _status agrees with what is answered."""
    # No agent answers yet: the first round is still out.
    slow = bu.cluster_conf([H[0]], mxb.free_port(H[0])).replace("polling-interval 1;",
                                                                 "polling-interval 20;")
    lb = bu.LB(daemons, slow)
    r = lb.ask()
    a = [rr for rr in r.answer if rr.rdtype == dns.rdatatype.A]
    assert a and a[0].ttl == 5, r
    assert {rd.address for rd in a[0]} == {"192.0.2.99"}
    txt = lb.ask("_status." + bu.CLUSTER, "TXT")
    header = b"".join(txt.answer[0][0].strings).decode() if txt.answer else ""
    assert "answer A {192.0.2.99}" in header, txt
    assert lb.cluster()["placeholder_answer"] == "zone-file"
    assert "zone file's A set {192.0.2.99} (ttl 5)" in lb.d.log()


def test_rank_swaps_inside_the_answer_move_no_serial(daemons):
    """Item 7: members all in the answer that change ranks change nothing a
    secondary serves: no serial bump, no NOTIFY; _status still shows it."""
    agents, lb = three(daemons, ratings=(20, 50, 90), max_members=3)
    lb.wait_set(H, 10)
    mxb.wait_until(lambda: lb.member(H[2])["rank"] == 1, 10, "rank 1 for the best")
    serial = soa_serial(lb)
    # Swap the best and the worst: ranks change, the answered set does not.
    agents.ratings[H[0]], agents.ratings[H[2]] = 90, 20
    for h in (H[0], H[2]):
        agents.stop(h)
        agents.start(h)
    mxb.wait_until(lambda: lb.member(H[0])["rank"] == 1, 15, "the swap seen")
    mxb.wait_until(lambda: "rank 1 " + H[0] in " ".join(
        b"".join(rr.strings).decode() for rrset in
        lb.ask("_status." + bu.CLUSTER, "TXT").answer for rr in rrset), 5,
        "the live _status table shows the new rank 1")
    assert lb.answer_set() == set(H)
    assert soa_serial(lb) == serial


# Serial (docs/testing.md): out "at the next poll" is a timing claim.
@pytest.mark.serial
def test_relay_not_accepting_leaves_at_next_poll(daemons):
    """Item 4: metricd says its relay is at max-sessions / cannot queue:
    brokerd takes the member out at the next poll, without a fall count,
    and takes it back when the relay has room again."""
    relay = mu.RelayStatus(H[2], 10, 100)
    extra = {H[2]: f"    relay-status 127.0.0.13 port {relay.port};\n"}
    try:
        agents, lb = three(daemons, agent_extra=extra)
        lb.wait_set([H[2], H[1]], 10)
        relay.doc["sessions"]["open"] = 100
        relay.doc["accepting"] = {"ok": False, "reason": "sessions-full",
                                  "detail": "100 of 100 sessions open"}
        t0 = time.monotonic()
        lb.wait_set([H[1], H[0]], NEXT_POLL + 2)  # + metricd's compute-interval
        m = lb.member(H[2])
        assert m["why"] == "not-accepting" and m["state"] == "up", m
        assert "max-sessions" in m["reason"], m
        assert m["consecutive_misses"] == 0
        print(f"member left {time.monotonic() - t0:.1f} s after its relay filled up")
        relay.doc["sessions"]["open"] = 3
        relay.doc["accepting"] = {"ok": True}
        lb.wait_set([H[2], H[1]], NEXT_POLL + 2)
        assert "accepting mail again" in lb.d.log()
        # A relay that stops answering its /status: out as well.
        relay.stop()
        lb.wait_set([H[1], H[0]], NEXT_POLL + 6)
        assert "relay not answering" in lb.member(H[2])["reason"]
    finally:
        relay.stop() if relay.thread.is_alive() else None


def test_key_mismatch_is_named(daemons):
    """Item 6: a member whose agent has another secret is down with the
    reason 'key mismatch', in /status and in the log, not 'timeout'."""
    other = "c29tZSBvdGhlciBzZWNyZXQgb2YgMzIgYnl0ZXMhIQo="
    agents, lb = three(daemons, secrets={H[1]: other})
    lb.wait_set([H[2], H[0]], 10)
    mxb.wait_until(lambda: lb.member(H[1])["state"] == "down", 8, "the keyless member down")
    m = lb.member(H[1])
    assert "key mismatch" in m["reason"], m
    assert "bad signature" in m["reason"], m
    assert m["key_mismatches"] >= 3
    assert "key mismatch" in lb.d.log()


def test_three_keyed_clusters_all_sign(daemons):
    """Item 1: three clusters each `key "lb-key"` against keyed agents:
    every cluster's members are up (not only the last cluster's)."""
    agents = bu.Agents(daemons, {H[0]: 50, H[1]: 60, H[2]: 70})
    clusters = "".join(
        bu.cluster_conf([h], agents.port, name=f"c{i}.{bu.ORIGIN}")
        for i, h in enumerate(H))
    lb = bu.LB(daemons, clusters)
    for i, h in enumerate(H):
        lb.wait_set([h], 10, name=f"c{i}.{bu.ORIGIN}")
        assert lb.member(h, name=f"c{i}.{bu.ORIGIN}")["state"] == "up"


def test_unwritable_state_folder_is_an_error(daemons, tmp_path):
    """A state file brokerd cannot write is an error for -t and at start."""
    zone = daemons.write("t.zone", bu.ZONE)
    conf = daemons.write("bad.conf", (
        f'options {{ user nobody; }};\n'
        f'broker {{ listen {{ 127.0.0.1 port {mxb.free_port()}; }};\n'
        f'  state-file "{tmp_path}/nowhere/brokerd.state";\n'
        f'  zone "{bu.ORIGIN}" {{ file "{zone}"; }};\n}};\n'))
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode != 0
    assert "state-file" in r.stderr and "nowhere" in r.stderr, r.stderr
    p = subprocess.run([mxb.binary("brokerd"), "-c", conf], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode != 0 and "state-file" in p.stderr, p.stderr
