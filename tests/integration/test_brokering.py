"""Load brokering: metricd members polled by brokerd, ranked, published into
brokerd's own zone, rotated, failed over (issue 4)."""
import json
import os
import time

import dns.rdatatype
import pytest

import brokering_util as bu
import metrics_util as mu
import mxb

H = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
# polling-interval 1, fall 3, dns-refresh 1: 3 polls + 1 refresh, plus slack
# for the poll timeout (0.75 s) and a loaded CI machine.
BOUND = 3 * 1 + 1 + 4


def three(daemons, **kw):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port, failover="127.0.0.19", **kw))
    return agents, lb


# Serial (docs/testing.md): BOUND, the liveness bound, is a product claim.
@pytest.mark.serial
def test_rank_rotate_fail_over(daemons):
    agents, lb = three(daemons)
    lb.wait_set([H[2], H[1]], 10)
    # Round robin: consecutive answers start with different records.
    firsts = {lb.answer()[0] for _ in range(4)}
    assert firsts == {H[2], H[1]}
    assert all(len(lb.answer()) == 2 for _ in range(3))
    # The best member stops answering: it leaves within the bound.
    t0 = time.monotonic()
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], BOUND)
    took = time.monotonic() - t0
    assert took <= BOUND, took
    log = lb.d.log()
    assert f"-{H[2]} (down: 3 polls failed (timeout" in log, log
    assert f"+{H[0]} (rank 2" in log, log
    m = lb.member(H[2])
    assert m["state"] == "down" and not m["published"] and m["why"] == "down"
    assert m["consecutive_misses"] >= 3
    # Back after a restart.
    agents.start(H[2])
    lb.wait_set([H[2], H[1]], 10)
    # Every member down: the failover address.
    for h in H:
        agents.stop(h)
    lb.wait_set(["127.0.0.19"], BOUND)
    c = lb.cluster()
    assert c["answer_source"]["A"] == "failover"
    assert "failover: no member is up" in lb.d.log()


def test_status_json_and_txt_table(daemons):
    agents, lb = three(daemons)
    lb.wait_set([H[2], H[1]], 10)
    c = lb.cluster()
    assert c["published"]["A"] and set(c["published"]["A"]) == {H[2], H[1]}
    by = {m["address"]: m for m in c["members"]}
    assert by[H[2]]["rank"] == 1 and by[H[1]]["rank"] == 2
    assert by[H[0]]["why"] == "ranked-out" and by[H[0]]["state"] == "up"
    assert by[H[2]]["rating"] > by[H[1]]["rating"] > by[H[0]]["rating"]
    assert by[H[2]]["inputs"]["cpu_rating"] == 90
    assert by[H[2]]["last_reply"] > 0 and by[H[2]]["consecutive_misses"] == 0
    # The ranked table over DNS: TXT at _status.<cluster>.
    name = "_status." + bu.CLUSTER

    def table():
        r = lb.ask(name, "TXT", tcp=True)
        return [b"".join(rd.strings).decode() for rs in r.answer for rd in rs]

    mxb.wait_until(lambda: any(f"rank 1 {H[2]} in-answer" in t for t in table()), 10,
                   "TXT table")
    rows = table()
    assert any(t.startswith(f"cluster {bu.CLUSTER}") for t in rows), rows
    assert any(f"rank 3 {H[0]} ranked-out up" in t for t in rows), rows
    text = mxb.http_get("127.0.0.1", lb.status, "/metrics")[2]
    assert "mxbroker_cluster_member_up{" in text
    assert "mxbroker_cluster_changes_total{" in text


def test_drain_by_agent_is_not_down(daemons):
    agents, lb = three(daemons)
    lb.wait_set([H[2], H[1]], 10)
    agents.drain(H[2])
    lb.wait_set([H[1], H[0]], 10)
    m = lb.member(H[2])
    assert m["state"] == "up" and m["agent_draining"] and m["why"] == "agent-draining"
    assert f"-{H[2]} (its agent reports draining)" in lb.d.log()
    agents.drain(H[2], on=False)
    lb.wait_set([H[2], H[1]], 10)


def test_reload_drain_add_remove(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, bu.cluster_conf(H[:2], agents.port))
    lb.wait_set([H[1], H[0]], 10)
    polls_before = lb.member(H[1])["polls"]
    # Add .13 and drain .12 in the file: SIGHUP, no restart.
    lb.reconfigure(bu.cluster_conf([H[0], H[1] + " drain", H[2]], agents.port))
    lb.wait_set([H[2], H[0]], 10)
    m = lb.member(H[1])
    assert m["operator"] == "drained" and m["why"] == "drained"
    # State of an unchanged member survives the reload.
    assert lb.member(H[0])["polls"] > 0 and m["polls"] >= polls_before
    assert lb.d.proc.poll() is None
    # Remove .11: only .13 is left to answer.
    lb.reconfigure(bu.cluster_conf([H[1] + " drain", H[2]], agents.port))
    lb.wait_set([H[2]], 10)
    # A broken file keeps the running configuration.
    with open(lb.conf_path, "a") as f:
        f.write("cluster {\n")
    lb.d.signal(__import__("signal").SIGHUP)
    mxb.wait_until(lambda: "the running configuration stays in force" in lb.d.log(), 5,
                   "reload refusal")
    assert lb.answer_set() == {H[2]}


# Serial (docs/testing.md): BOUND, the liveness bound, is a product claim.
@pytest.mark.serial
def test_health_check_smtp(daemons):
    port = bu.common_port(H)
    greeters = {h: bu.SmtpBanner(h, port) for h in H}
    try:
        agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
        lb = bu.LB(daemons, bu.cluster_conf(H, agents.port,
                                            extra=f"    health-check smtp {port};\n"))
        lb.wait_set([H[2], H[1]], 10)
        greeters[H[2]].close()  # metricd keeps answering, SMTP is gone
        lb.wait_set([H[1], H[0]], BOUND)
        m = lb.member(H[2])
        assert m["state"] == "up" and m["health"] == "down" and m["why"] == "health-failed"
        assert "refused" in m["health_detail"].lower(), m
        assert f"-{H[2]} (health check failed" in lb.d.log()
    finally:
        for g in greeters.values():
            g.close()


def test_health_check_wants_220(daemons):
    port = bu.common_port(H[:2])
    good = bu.SmtpBanner(H[0], port)
    bad = bu.SmtpBanner(H[1], port, banner=b"554 go away\r\n")
    try:
        agents = bu.Agents(daemons, {H[0]: 20, H[1]: 90})
        lb = bu.LB(daemons, bu.cluster_conf(H[:2], agents.port, max_members=2,
                                            extra=f"    health-check smtp {port};\n"))
        lb.wait_set([H[0]], 10)
        mxb.wait_until(lambda: "554" in lb.member(H[1])["health_detail"], 5, "554 detail")
    finally:
        good.close()
        bad.close()


def test_forged_replies_change_nothing(daemons):
    """A fake agent answering unsigned or with a bad tag never gets in."""
    port = bu.common_port(["127.0.0.21", "127.0.0.22", "127.0.0.23"])
    good = bu.Responder(["127.0.0.21"], port, lambda h: 30000)
    unsigned = bu.Responder(["127.0.0.22"], port, lambda h: 120000, key=None)
    badtag = bu.Responder(["127.0.0.23"], port, lambda h: 120000, key=b"not the key")
    try:
        lb = bu.LB(daemons, bu.cluster_conf(["127.0.0.21", "127.0.0.22", "127.0.0.23"], port,
                                            max_members=3))
        lb.wait_set(["127.0.0.21"], 10)
        mxb.wait_until(lambda: lb.member("127.0.0.22")["state"] == "down", 10, "unsigned down")
        mxb.wait_until(lambda: lb.member("127.0.0.23")["state"] == "down", 10, "bad tag down")
        assert unsigned.answered > 0 and badtag.answered > 0
        assert lb.answer_set() == {"127.0.0.21"}
        assert lb.state()["poller"]["discarded"] > 0
    finally:
        for r in (good, unsigned, badtag):
            r.stop()


# Serial (docs/testing.md): BOUND, the liveness bound, is a product claim.
@pytest.mark.serial
def test_no_failover_keeps_last_set(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50})
    lb = bu.LB(daemons, bu.cluster_conf(H[:2], agents.port))
    lb.wait_set([H[0], H[1]], 10)
    agents.stop(H[0])
    lb.wait_set([H[1]], BOUND)
    agents.stop(H[1])
    mxb.wait_until(lambda: "no member is up and no failover address" in lb.d.log(), BOUND,
                   "all-down warning")
    assert lb.answer_set() == {H[1]}
    assert lb.cluster()["answer_source"]["A"] == "all-down-kept-last"


def test_state_file_answers_after_restart(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port, failover="127.0.0.19"))
    lb.wait_set([H[2], H[1]], 10)
    state = json.load(open(os.path.join(daemons.dir, "brokerd.state")))
    assert set(state["clusters"][bu.CLUSTER]["A"]) == {H[2], H[1]}
    lb.d.stop()
    # Restarted: the first answer is the saved set, not the zone file's
    # 192.0.2.99, although no poll has returned yet.
    lb.start()
    assert lb.answer_set() == {H[2], H[1]}
    assert "answering the saved A set" in lb.d.log()
    lb.wait_set([H[2], H[1]], 10)


def test_never_mix_families(daemons):
    port = bu.common_port(["127.0.0.11", "::1"])
    a4 = bu.Agents(daemons, {"127.0.0.11": 50}, port=port)
    a6 = bu.Agents(daemons, {"::1": 60}, port=port)
    assert a4 and a6
    lb = bu.LB(daemons, bu.cluster_conf(["127.0.0.11", "::1"], port, max_members=3))
    lb.wait_set(["127.0.0.11"], 10)
    lb.wait_set(["::1"], 10, rdtype="AAAA")
    r = lb.ask(bu.CLUSTER, "A")
    assert all(rs.rdtype == dns.rdatatype.A for rs in r.answer)


def test_answers_fit_small_udp_size(daemons):
    hosts = [f"127.0.1.{i}" for i in range(1, 61)]
    port = bu.common_port(hosts[:3])
    resp = bu.Responder(hosts, port, lambda h: 10000 + int(h.rsplit(".", 1)[1]) * 100)
    try:
        lb = bu.LB(daemons, bu.cluster_conf(hosts, port, max_members=60))
        mxb.wait_until(lambda: len(lb.answer(payload=4096)) == 60, 15, "60 published")
        r = lb.ask(bu.CLUSTER, "A")  # no EDNS: 512 bytes
        assert not (r.flags & 0x0200), "truncated"
        n = sum(len(rs) for rs in r.answer)
        assert 0 < n < 60
    finally:
        resp.stop()


def test_hmac_key_must_be_sha256(daemons):
    conf = daemons.write("bad.conf", 'key "k" { algorithm hmac-sha1; secret "'
                         + mu.SECRET_B64 + '"; };\n' + bu.cluster_conf(
                             ["127.0.0.11"], 4331, key=False, extra='    key "k";\n'))
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode != 0 and "must be hmac-sha256" in r.stderr, r.stderr


def test_openvms_file_runs(daemons):
    """A TCPIP$LBROKER.CONF made of cluster statements only loads and runs
    (the example's addresses moved to loopback so nothing leaves the box)."""
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "examples",
                             "TCPIP$LBROKER.CONF")).read()
    conf = daemons.write("lbroker.conf", text)
    r = mxb.run("brokerd", "-t", "-c", conf)
    assert r.returncode == 0, r.stderr
    local = daemons.write("TCPIP$LBROKER.CONF",
                          text.replace("10.0.", "127.0.").replace("192.0.2.", "127.0.2."))
    d = daemons.start("brokerd-openvms", [mxb.binary("brokerd"), "-c", local])
    mxb.wait_until(lambda: "started" in d.log(), 10, "brokerd to start", proc=d.proc)
    log = d.log()
    assert "cluster smtp.mail.example.com: 6 members" in log, log
    assert "cluster www.example.com: 2 members" in log, log
    assert d.stop() == 0


# Serial (docs/testing.md): BOUND, the liveness bound, is a product claim.
@pytest.mark.serial
def test_check_address_differs_from_answer(daemons):
    """`check ADDR`: the agent on .11 speaks for the answered address .41."""
    agents = bu.Agents(daemons, {H[0]: 50})
    lb = bu.LB(daemons, bu.cluster_conf(["127.0.0.41 check 127.0.0.11"], agents.port))
    lb.wait_set(["127.0.0.41"], 10)
    m = lb.member("127.0.0.41")
    assert m["check"] == f"127.0.0.11:{agents.port}" and m["state"] == "up"
    agents.stop(H[0])
    mxb.wait_until(lambda: lb.member("127.0.0.41")["state"] == "down", BOUND, "down")
