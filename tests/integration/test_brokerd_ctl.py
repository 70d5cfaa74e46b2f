"""brokerd-ctl: drain and undrain members of a running brokerd over its
control socket, show the ranked table; drains survive SIGHUP and restarts
(issue 14, "Drain")."""
import json
import os
import stat

import brokering_util as bu
import mxb

H = ["127.0.0.51", "127.0.0.52", "127.0.0.53"]
A = "a." + bu.ORIGIN
B = "b." + bu.ORIGIN
C = "c." + bu.ORIGIN
# The same three hosts in three clusters, listed in different orders, so a
# drained member is the first (A), the middle (B) and the last (C) listed.
ORDER = {A: [H[0], H[1], H[2]], B: [H[2], H[0], H[1]], C: [H[1], H[2], H[0]]}


def clusters(port):
    return "".join(bu.cluster_conf(ORDER[n], port, name=n, max_members=3) for n in ORDER)


def ctl(lb, *args):
    r = mxb.run("brokerd-ctl", "-c", lb.conf_path, *args)
    return r


def ctl_json(lb, *args):
    r = ctl(lb, "--json", *args)
    return r, json.loads(r.stdout) if r.stdout.strip() else None


def member(lb, cluster, addr):
    return lb.member(addr, name=cluster)


def test_drain_undrain_show_restart(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, clusters(agents.port))
    for n in ORDER:
        lb.wait_set(H, 10, name=n)
    sock = os.path.join(daemons.dir, "brokerd.sock")
    st = os.stat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) in (0o600, 0o660), oct(
        st.st_mode)
    assert st.st_uid == os.getuid()

    # First, middle, last of the member lists: each leaves its answer at once.
    drains = [(A, H[0], "disk swap"), (B, H[0], "kernel update"), (C, H[0], "")]
    r = ctl(lb, "drain", A, H[0], "--reason", "disk swap")
    assert r.returncode == 0, r.stderr
    assert f"drained {H[0]}: drained by" in r.stdout and "disk swap" in r.stdout, r.stdout
    r, j = ctl_json(lb, "drain", B + ".", H[0], "--reason=kernel update")
    assert r.returncode == 0, r.stderr
    assert j["member"]["why"] == "drained" and j["member"]["published"] is False, j
    assert j["member"]["drain"]["reason"] == "kernel update"
    r = ctl(lb, "drain", C, H[0])
    assert r.returncode == 0, r.stderr
    for n in ORDER:
        # "at once": the answer changes without waiting for a poll round.
        lb.wait_set([H[1], H[2]], 2, name=n)
    # Another member of A (its middle) too, then back.
    assert ctl(lb, "drain", A, H[1], "--reason", "x").returncode == 0
    lb.wait_set([H[2]], 2, name=A)
    assert ctl(lb, "undrain", A, H[1]).returncode == 0
    lb.wait_set([H[1], H[2]], 5, name=A)

    def check_drained(where):
        for n, h, reason in drains:
            m = member(lb, n, h)
            assert m["why"] == "drained" and m["operator"] == "drained", (where, m)
            assert m["state"] in ("up", "unknown") and not m["published"], (where, m)
            assert m["drain"]["via"] == "brokerd-ctl" and m["drain"]["reason"] == reason
            assert m["drain"]["by"] and m["drain"]["at"].endswith("Z"), m
            assert m["reason"].startswith("drained by "), m
            assert member(lb, n, H[1])["why"] != "drained"

    check_drained("running")
    log = lb.d.log()
    assert f"cluster {A}: member {H[0]} drained by" in log and "disk swap" in log, log
    assert f"-{H[0]} (drained by" in log, log

    # show: the ranked table, as the _status TXT rows, with the drain.
    r = ctl(lb, "show", A)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"cluster {A} policy ranked"), lines
    assert any(ln.startswith(f"rank 1 {H[2]} in-answer up") for ln in lines), lines
    assert any(ln.startswith(f"rank 0 {H[0]} drained up") and "disk swap" in ln
               for ln in lines), lines
    r, j = ctl_json(lb, "show")
    assert r.returncode == 0 and [c["name"] for c in j["clusters"]] == [A, B, C], j
    rows = {m["address"]: m for m in j["clusters"][1]["members"]}
    assert rows[H[0]]["why"] == "drained" and rows[H[2]]["rank"] == 1, rows

    # SIGHUP keeps the drains.
    lb.reconfigure(clusters(agents.port))
    mxb.wait_until(lambda: lb.state()["reloads"] >= 1, 5, "reload")
    check_drained("after SIGHUP")
    for n in ORDER:
        assert lb.answer_set(name=n) == {H[1], H[2]}

    # A restart keeps them: from the first answer on, and after the first polls.
    lb.d.stop()
    lb.start()
    for n in ORDER:
        assert lb.answer_set(name=n) == {H[1], H[2]}, n
    check_drained("after restart")
    mxb.wait_until(lambda: not lb.cluster(A)["warming_up"], 10, "warm-up")
    for n in ORDER:
        assert lb.answer_set(name=n) == {H[1], H[2]}, n
    check_drained("after the first polls")
    assert all(member(lb, n, H[0])["state"] == "up" for n in ORDER)
    assert "stays drained" in lb.d.log()

    # Undrain: back into the ranking (first, middle, last).
    for n, h, _ in drains:
        r = ctl(lb, "undrain", n, h)
        assert r.returncode == 0, r.stderr
        assert f"undrained {h}:" in r.stdout
    for n in ORDER:
        lb.wait_set(H, 5, name=n)
    assert member(lb, A, H[0])["drain"] is None
    with open(os.path.join(daemons.dir, "brokerd.state")) as f:
        assert json.load(f)["drains"] == {}


def test_errors(daemons):
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50})
    lb = bu.LB(daemons, bu.cluster_conf([H[0], H[1] + " drain"], agents.port, name=A))
    r = ctl(lb, "drain", "nope." + bu.ORIGIN, H[0])
    assert r.returncode == 1 and "no such cluster" in r.stderr, r
    r, j = ctl_json(lb, "drain", A, "192.0.2.77")
    assert r.returncode == 1 and j == {"error": "drain: no such member in the cluster"}, r
    r, j = ctl_json(lb, "drain", A, "not-an-address")
    assert r.returncode == 1 and "IP address" in j["error"], r
    r = ctl(lb, "undrain", A, H[1])
    assert r.returncode == 1 and "drained by the configuration" in r.stderr, r
    r = ctl(lb, "drain", A, H[0], "--reason", "bad\x01reason")
    assert r.returncode == 1 and "printable" in r.stderr, r
    r = ctl(lb, "frobnicate")
    assert r.returncode == 64, r
    r = ctl(lb, "show", "nope." + bu.ORIGIN)
    assert r.returncode == 1 and "no such cluster" in r.stderr
    assert member(lb, A, H[1])["drain"] == {"via": "configuration"}
    # No daemon: 69, and a JSON error under --json.
    lb.d.stop()
    r, j = ctl_json(lb, "show")
    assert r.returncode == 69 and "does not answer" in j["error"], r
    assert not os.path.exists(os.path.join(daemons.dir, "brokerd.sock"))
