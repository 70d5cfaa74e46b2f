"""metricd and metricview: ranking, JSON, plugin exit codes, Prometheus text,
signed polls and forged replies, key mismatches, drain, relay sessions and
the relay's "accepting" state, lbcd."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import mxb
import metrics_util as mu
from conftest import require_tool

A, B = "127.0.0.11", "127.0.0.12"


def view(*args, timeout=30):
    return mxb.run("metricview", *args, timeout=timeout)


@pytest.fixture
def two_agents(daemons):
    """metricd on .11 (cpu-rating 90) and .12 (cpu-rating 20), signed."""
    _, pa, ha = mu.start_agent(daemons, A, cpu_rating=90)
    _, pb, hb = mu.start_agent(daemons, B, cpu_rating=20)
    return {"a": f"{A}:{pa}", "b": f"{B}:{pb}", "http_a": ha, "http_b": hb,
            "key": mu.key_file(daemons)}


def test_metricview_ranks_agents(two_agents):
    t = two_agents
    r = view("--key-file", t["key"], t["b"], t["a"])
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:2] == ["Host", "Rating"]
    assert lines[1].split()[0] == t["a"], r.stdout     # higher cpu-rating first
    assert lines[2].split()[0] == t["b"], r.stdout
    assert int(lines[1].split()[1]) > int(lines[2].split()[1])


def test_metricview_json(two_agents):
    t = two_agents
    r = view("--json", "--key-file", t["key"], t["a"], t["b"])
    assert r.returncode == 0, r.stderr
    hosts = json.loads(r.stdout)["hosts"]
    assert [h["host"] for h in hosts] == [t["a"], t["b"]]
    a, b = hosts
    assert a["ok"] and b["ok"]
    assert a["rating"] > b["rating"] > 0
    assert a["cpu_rating"] == 90 and b["cpu_rating"] == 20
    for h in hosts:
        # The formula holds on the reported terms (rounded to thousandths).
        assert abs(h["availability"] + h["workload"] - h["penalty"] - h["rating"]) < 0.01
        assert h["capacity"] == 100 and h["sessions"] == 0
        assert h["availability"] == 20.0
        assert 0 <= h["load_percent"] <= 100
        assert h["free_memory_bytes"] > 0
        assert h["draining"] is False
    # The same numbers over HTTP.
    status = mxb.http_json(A, t["http_a"])
    assert status["inputs"]["cpu_rating"] == 90
    assert status["signed"] is True
    assert status["polls"]["answered"] >= 1


def test_check_exit_codes(two_agents):
    t = two_agents
    args = ["--check", "--key-file", t["key"], t["a"], t["b"]]
    ok = view(*args, "--warn", "1", "--crit", "0.5")
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith("METRIC OK - ")
    assert "|" in ok.stdout and f"'{t['a']}'=" in ok.stdout
    assert len(ok.stdout.strip().splitlines()) == 1
    warn = view(*args, "--warn", "1000", "--crit", "0.5")
    assert warn.returncode == 1 and warn.stdout.startswith("METRIC WARNING"), warn.stdout
    crit = view(*args, "--warn", "1000", "--crit", "999")
    assert crit.returncode == 2 and crit.stdout.startswith("METRIC CRITICAL"), crit.stdout
    silent = f"127.0.0.13:{mxb.free_port('127.0.0.13')}"
    unk = view(*args, silent, "--warn", "1", "--crit", "0.5", "--timeout", "0.5")
    assert unk.returncode == 3 and unk.stdout.startswith("METRIC UNKNOWN"), unk.stdout
    assert "no answer" in unk.stdout
    # Without the key, a signed agent says "signature required": CRITICAL.
    nokey = view("--check", "--warn", "1", "--crit", "0", "--timeout", "0.5", t["a"])
    assert nokey.returncode == 2, nokey.stdout
    assert "key mismatch (signature required)" in nokey.stdout
    # Without --warn/--crit the documented defaults apply (20 and 10).
    dflt = view("--check", "--key-file", t["key"], t["a"])
    assert dflt.returncode == 0, dflt.stdout
    assert re.search(r"'[^']+'=[\d.]+;20:;10:;0;120$", dflt.stdout.strip()), dflt.stdout


PERFDATA = re.compile(r"^'(?P<label>[^']+)'=(?P<value>[\d.]+|U);(?P<warn>[\d.]+):;"
                      r"(?P<crit>[\d.]+):;0;(?P<max>[\d.]+)$")


def test_check_perfdata_low_is_bad(two_agents):
    """Perfdata in the plugin guidelines' range syntax: a rating below the
    warning threshold warns, so the thresholds are 'N:' (alert below N)."""
    t = two_agents
    silent = f"127.0.0.13:{mxb.free_port('127.0.0.13')}"
    r = view("--check", "-w", "40", "-c", "30:", "--timeout", "0.5", "--key-file", t["key"],
             t["a"], t["b"], silent)
    assert r.returncode == 3 and len(r.stdout.splitlines()) == 1, r.stdout
    text, _, perf = r.stdout.strip().partition(" | ")
    assert text.startswith("METRIC UNKNOWN - ") and "|" not in text
    items = [PERFDATA.match(p) for p in perf.split(" ")]
    assert all(items), perf
    assert [m["label"] for m in items] == [t["a"], t["b"], silent]
    assert all(m["warn"] == "40" and m["crit"] == "30" and m["max"] == "120" for m in items)
    assert items[2]["value"] == "U"
    assert float(items[0]["value"]) > float(items[1]["value"]) > 0
    assert r.stderr == ""


@pytest.mark.parametrize("args,words", [
    (["--bogus"], "bad option"),
    ([], "no HOST"),
    (["--warn", "abc"], "bad warning threshold"),
    (["--crit", "10:20"], "bad critical threshold"),
    (["--warn", "~:5"], "bad warning threshold"),
    (["--warn", "5", "--crit", "10"], "inverted thresholds"),
    (["--key-file", "/nonexistent/lb.key"], "No such file"),
    (["--key-file", "/"], "key file /"),
    (["--key", "lb-key"], "--key NAME needs --key-file"),
    (["--timeout"], "missing argument"),
    (["no-such-host.invalid"], "no-such-host.invalid"),
], ids=["option", "no-host", "bad-warn", "range-warn", "tilde", "inverted", "missing-key",
        "key-is-dir", "key-without-file", "no-timeout", "unresolvable"])
def test_check_errors_are_one_unknown_line(args, words):
    """Plugin guidelines: every error is exit 3 with one status line on stdout."""
    host = [] if args in ([], ["no-such-host.invalid"], ["--timeout"]) else ["127.0.0.1:9"]
    r = view("--check", *args, *host)
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("METRIC UNKNOWN - "), r.stdout
    assert words in lines[0], lines[0]
    assert "|" not in lines[0]
    assert r.stderr == "", r.stderr


def test_key_picked_by_name(daemons, two_agents):
    t = two_agents
    both = daemons.write(
        "both.conf",
        'key "other" { algorithm hmac-sha256; secret "b3RoZXIgc2VjcmV0"; };\n'
        f'key "lb-key" {{ algorithm hmac-sha256; secret "{mu.SECRET_B64}"; }};\n')
    r = view("--check", "--key-file", both, t["a"])
    assert r.returncode == 3 and "--key" in r.stdout, r.stdout
    r = view("--check", "--key-file", both, "--key", "lb-key", t["a"])
    assert r.returncode == 0 and r.stdout.startswith("METRIC OK - "), r.stdout
    r = view("--check", "--timeout", "1", "--key-file", both, "--key", "other", t["a"])
    assert r.returncode == 2 and "key mismatch (bad signature)" in r.stdout, r.stdout
    r = view("--check", "--key-file", both, "--key", "nope", t["a"])
    assert r.returncode == 3 and 'no key "nope"' in r.stdout, r.stdout
    j = view("--json", "--key-file", both, "--key", "nope", t["a"])
    assert j.returncode != 0 and "nope" in json.loads(j.stdout)["error"]


def assert_house_json(text):
    """One JSON style: a top-level object, numbers with at most 3 decimals and
    no trailing zeros (72.5, not 72.500000000001 or 72.500), no \\/ escapes."""
    floats = []
    assert isinstance(json.loads(text, parse_float=lambda f: floats.append(f) or float(f)),
                      dict), text
    assert "\\/" not in text, text
    for f in floats:
        decimals = f.partition(".")[2]
        assert len(decimals) <= 3 and not decimals.endswith("0"), f


def test_one_json_style(two_agents):
    t = two_agents
    r = view("--json", "--key-file", t["key"], t["a"], t["b"])
    assert r.returncode == 0, r.stderr
    assert_house_json(r.stdout)
    _, _, body = mxb.http_get(A, t["http_a"], "/status")
    assert_house_json(body)
    # Errors under --json are JSON too, with a non-zero exit.
    for args, rc in ((["--bogus", t["a"]], 64), (["--warn", "x", t["a"]], 64),
                     (["--key-file", "/nonexistent/k", t["a"]], 1), ([], 64),
                     (["no-such-host.invalid"], 1)):
        e = view("--json", *args)
        assert e.returncode == rc, (args, e.returncode, e.stdout)
        assert list(json.loads(e.stdout)) == ["error"] and e.stderr == "", (args, e.stdout)


def test_prometheus_text_passes_promtool(two_agents):
    promtool = require_tool("promtool")
    code, ctype, body = mxb.http_get(A, two_agents["http_a"], "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    for name in ("rating", "availability", "workload", "penalty", "load_percent",
                 "cpu_rating", "sessions", "capacity", "free_memory_bytes", "draining",
                 "available", "unavailable"):
        assert f"# TYPE mxbroker_metric_{name} gauge" in body
        assert f"# HELP mxbroker_metric_{name} " in body
    assert 'mxbroker_metric_poll_requests_total{result="answered"}' in body
    assert "mxbroker_metric_available 1" in body
    assert 'mxbroker_metric_unavailable{reason="sessions-full"} 0' in body
    r = subprocess.run([promtool, "check", "metrics"], input=body, text=True,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_signed_protocol_from_the_spec(daemons):
    """A Python client written from docs/protocol-metrics.md talks to metricd."""
    _, port, http = mu.start_agent(daemons, A, cpu_rating=40)
    n = mu.nonce()
    req = mu.request(0x01020304, n, mu.SECRET)
    data = mu.udp_ask(A, port, req)
    assert data is not None
    assert len(data) == 112 and len(req) == 80       # no amplification
    v = mu.parse_reply(data, 0x01020304, n, mu.SECRET)
    assert v["cpu_rating"] == 40 and v["interval"] == 1 and v["capacity"] == 100
    assert abs(v["rating"] - (v["availability"] + v["workload"] - v["penalty"])) <= 1
    assert abs(v["computed_ms"] - mu.now_ms()) < 5000
    # Unsigned and badly signed requests get an unsigned error naming the
    # mismatch, smaller than the request (no amplification).
    unsigned = mu.request(1, n)
    err = mu.udp_ask(A, port, unsigned, timeout=2)
    assert err is not None and len(err) == mu.ERROR_LEN < len(unsigned)
    assert mu.parse_error(err, 1, n, mu.SECRET) == (mu.CODE_SIG_REQUIRED, False)
    badly = mu.request(2, n, b"wrong key")
    err = mu.udp_ask(A, port, badly, timeout=2)
    assert err is not None and len(err) == mu.ERROR_LEN < len(badly)
    assert mu.parse_error(err, 2, n, mu.SECRET) == (mu.CODE_BADSIG, False)
    polls = mxb.http_json(A, http)["polls"]
    assert polls["signature_required"] == 1 and polls["bad_signature"] == 1
    assert polls["errors_sent"] == 2
    # Garbage never gets an answer either.
    assert mu.udp_ask(A, port, b"\x00" * 48, timeout=0.3) is None


def test_unsigned_agent_answers_errors(daemons):
    _, port, _ = mu.start_agent(daemons, A, key=False)
    n = mu.nonce()
    v = mu.parse_reply(mu.udp_ask(A, port, mu.request(9, n)), 9, n)
    assert len(mu.request(9, n)) == 48 and v["rating"] > 0
    bad = bytearray(mu.request(10, n))
    bad[4] = 7                                          # version 7
    err = mu.udp_ask(A, port, bytes(bad))
    assert err is not None and len(err) == 28 and err[5] == mu.T_ERROR
    assert err[20:24] == b"\x00\x01\x00\x01"            # code VERSION, we speak 1
    signed = mu.udp_ask(A, port, mu.request(11, n, mu.SECRET))
    assert signed is not None and signed[20:22] == b"\x00\x03"   # NO_KEY


def _forger(mode, key=None):
    """Respond like an agent, but wrongly in the given way."""
    forger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    forger.bind(("127.0.0.22", 0))
    idle = {"rating": 120000, "availability": 20000, "workload": 100000,
            "cpu_rating": 100, "capacity": 100, "interval": 10}

    def respond(sock, data, peer):
        _, _, _, _, seq, n = mu.HEADER.unpack_from(data)
        if mode == "other-address":
            forger.sendto(mu.reply(seq, n, idle, key), peer)
        elif mode == "wrong-nonce":
            sock.sendto(mu.reply(seq, bytes(8), idle, key), peer)
        elif mode == "bad-tag":
            pkt = bytearray(mu.reply(seq, n, idle, key))
            pkt[-1] ^= 1
            sock.sendto(bytes(pkt), peer)
        elif mode == "unsigned":
            sock.sendto(mu.reply(seq, n, idle, None), peer)
        else:
            sock.sendto(mu.reply(seq, n, idle, key), peer)
    return respond, forger


@pytest.mark.parametrize("mode,signed", [("other-address", False), ("wrong-nonce", False),
                                         ("other-address", True), ("bad-tag", True),
                                         ("unsigned", True), ("honest", False),
                                         ("honest", True)])
def test_forged_replies_are_ignored(daemons, mode, signed):
    respond, forger = _forger(mode, mu.SECRET if signed else None)
    agent = mu.FakeAgent("127.0.0.21", respond)
    try:
        args = ["--json", "--timeout", "0.7", f"127.0.0.21:{agent.port}"]
        if signed:
            args = ["--key-file", mu.key_file(daemons)] + args
        r = view(*args)
        host = json.loads(r.stdout)["hosts"][0]
        if mode == "honest":
            assert agent.requests == 1
            assert r.returncode == 0 and host["ok"] and host["rating"] == 120.0
        else:
            # Unanswered, the poll is sent again at T/3 and 2T/3.
            assert agent.requests == 3
            assert r.returncode == 3 and not host["ok"], r.stdout
    finally:
        agent.stop()
        forger.close()


def test_drain_survives_restart(daemons, tmp_path):
    d, port, http = mu.start_agent(daemons, A, cpu_rating=60, name="first")
    conf = str(tmp_path / "first.conf")
    key = mu.key_file(daemons)
    r = mxb.run("metricd", "--drain=kernel update", "-c", conf)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "metricd.drain").exists()

    def drained():
        h = json.loads(view("--json", "--key-file", key, f"{A}:{port}").stdout)["hosts"][0]
        return h["ok"] and h["rating"] == 0 and h["draining"]
    mu.wait_for(drained, 5, "rating 0 with the draining flag")
    status = mxb.http_json(A, http)
    assert status["draining"] is True and "kernel update" in status["drain_reason"]
    assert status["workload"] > 0                       # inputs still reported
    chk = view("--check", "--warn", "10", "--crit", "5", "--key-file", key, f"{A}:{port}",
               "--status-port", str(http))
    assert chk.returncode == 0 and "(draining: kernel update (by " in chk.stdout, chk.stdout

    d.stop()
    d2 = daemons.start("second", [mxb.binary("metricd"), "-c", conf],
                       ready=lambda: mu.is_ready(A, http))
    assert mxb.http_json(A, http)["draining"] is True
    assert "starting drained" in d2.log()
    assert mxb.run("metricd", "--undrain", "-c", conf).returncode == 0

    def undrained():
        h = json.loads(view("--json", "--key-file", key, f"{A}:{port}").stdout)["hosts"][0]
        return h["ok"] and h["rating"] > 0 and not h["draining"]
    mu.wait_for(undrained, 5, "drain to end")


def test_drain_by_root_readable_by_the_daemon_user(daemons):
    """`metricd --drain` as root (via sudo) writes a file the daemon's user
    reads: /status and metricview show the reason, who and when."""
    if os.geteuid() != 0:
        pytest.fail("the drain-as-root test needs root (CI runs as root)")
    shared = tempfile.mkdtemp(prefix="mxb-drain-")
    try:
        os.chmod(shared, 0o755)
        drain_file = os.path.join(shared, "metricd.drain")
        port, http = mxb.free_port(A), mxb.free_port(A)
        conf = daemons.write("nobody.conf",
                             f'options {{ directory "{daemons.dir}"; user "nobody"; }};\n'
                             f"metrics {{ listen {A} port {port}; http-listen {A} port {http};"
                             f' compute-interval 1; drain-file "{drain_file}"; }};\n')
        env = dict(os.environ, SUDO_USER="alice")
        env.pop("MXB_ALLOW_ROOT", None)
        daemons.start("metricd-nobody", [mxb.binary("metricd"), "-c", conf], env=env,
                      ready=lambda: mu.is_ready(A, http))
        why = "kernel update, see https://wiki.example/ops/42"
        r = subprocess.run([mxb.binary("metricd"), f"--drain={why}", "-c", conf], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert os.stat(drain_file).st_mode & 0o777 == 0o644

        def drained():
            s = mxb.http_json(A, http)
            return s["draining"] and s["drain"] and s["drain"]["reason"] == why
        mu.wait_for(drained, 5, "the daemon (as nobody) to read the reason")
        _, _, body = mxb.http_get(A, http, "/status")
        assert "\\/" not in body
        d = json.loads(body)["drain"]
        assert d["by"] == "alice" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["at"])
        assert json.loads(body)["drain_reason"] == why
        target = [f"{A}:{port}", "--status-port", str(http)]
        table = view(*target)
        assert f"drained: {why} (by alice at {d['at']})" in table.stdout, table.stdout
        h = json.loads(view("--json", *target).stdout)["hosts"][0]
        assert h["draining"] and h["drain"] == d, h
        chk = view("--check", *target)
        assert chk.returncode == 0, chk.stdout
        assert f"(draining: {why} (by alice at {d['at']}))" in chk.stdout, chk.stdout
        # Without its /status metricview still says it is drained, and why not more.
        blind = json.loads(view("--json", f"{A}:{port}", "--status-port",
                                str(mxb.free_port(A))).stdout)["hosts"][0]
        assert blind["draining"] and blind["drain"]["reason"] is None
        assert blind["drain"]["error"].startswith("status: ")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_relay_sessions_and_fallback(daemons):
    relay = mu.RelayStatus("127.0.0.14", 25, 50)
    try:
        _, port, http = mu.start_agent(
            daemons, A, key=False, extra=f"    relay-status 127.0.0.14 port {relay.port};\n")

        def from_relay():
            s = mxb.http_json(A, http)
            return s["inputs"]["sessions_source"] == "relay"
        mu.wait_for(from_relay, 5, "sessions from the relay")
        s = mxb.http_json(A, http)
        assert s["inputs"]["sessions"] == 25 and s["inputs"]["capacity"] == 50
        assert s["availability"] == 10.0 and s["relay"]["ok"] is True
        h = json.loads(view("--json", f"{A}:{port}").stdout)["hosts"][0]
        assert h["sessions"] == 25 and h["capacity"] == 50 and "relay" in h["flags"]
    finally:
        relay.stop()

    def fell_back():
        s = mxb.http_json(A, http)
        return s["relay"]["ok"] is False and s["inputs"]["capacity"] == 100
    mu.wait_for(fell_back, 8, "fallback to the configured capacity")
    s = mxb.http_json(A, http)
    assert s["relay"]["error"] and s["inputs"]["sessions_source"] == "configured"
    assert s["availability"] == 20.0
    h = json.loads(view("--json", f"{A}:{port}").stdout)["hosts"][0]
    assert "relay-down" in h["flags"]


def test_reload_applies_cpu_rating(daemons, tmp_path):
    d, port, http = mu.start_agent(daemons, A, cpu_rating=30, key=False, name="reload")
    conf = tmp_path / "reload.conf"
    conf.write_text(conf.read_text().replace("cpu-rating 30", "cpu-rating 80"))
    d.signal(signal.SIGHUP)
    mu.wait_for(lambda: mxb.http_json(A, http)["inputs"]["cpu_rating"] == 80, 5,
                "new cpu-rating")
    assert "reload" in d.log()


def test_lbcd_real_daemon_and_our_responder(daemons):
    lbcd = require_tool("lbcd")
    lbcdclient = require_tool("lbcdclient")
    host = "127.0.0.31"
    port = mxb.free_port(host)
    daemons.start("lbcd", [lbcd, "-d", "-b", host, "-p", str(port)],
                  ready=mxb.udp_bound(host, port))
    r = view("--lbcd", "--json", f"{host}:{port}")
    assert r.returncode == 0, r.stdout + r.stderr
    h = json.loads(r.stdout)["hosts"][0]
    assert h["ok"] and 0 < h["rating"] <= 100 and "lbcd" in h["flags"]

    lport = mxb.free_port(A)
    _, _, http = mu.start_agent(daemons, A, cpu_rating=70, key=False,
                                extra=f"    lbcd-listen {A} port {lport};\n")
    out = subprocess.run([lbcdclient, "-p", str(lport), A], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "PROTOCOL 3" in out.stdout and "default (0): weight" in out.stdout
    ours = json.loads(view("--lbcd", "--json", f"{A}:{lport}").stdout)["hosts"][0]
    native = mxb.http_json(A, http)["rating"]
    assert ours["ok"] and abs(ours["rating"] - min(native, 100)) < 5
    assert mxb.http_json(A, http)["polls"]["lbcd_answered"] >= 2


def test_key_mismatch_named_by_metricview_and_logged(daemons, two_agents):
    """A wrong key is a key mismatch, not a timeout: metricview names it (text,
    --json, --check CRITICAL) and metricd logs the source."""
    t = two_agents
    wrong = daemons.write("wrong.key", "d3Jvbmcga2V5IHdyb25nIGtleQ==\n")
    r = view("--timeout", "1", "--key-file", wrong, t["a"], t["b"])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "key mismatch (bad signature)" in r.stdout and "timeout" not in r.stdout
    j = json.loads(view("--json", "--timeout", "1", "--key-file", wrong, t["a"]).stdout)
    host = j["hosts"][0]
    assert not host["ok"] and host["key_mismatch"] is True
    assert host["error"] == "key mismatch (bad signature)"
    chk = view("--check", "--warn", "1", "--crit", "0", "--timeout", "1", "--key-file", wrong,
               t["a"])
    assert chk.returncode == 2 and chk.stdout.startswith("METRIC CRITICAL"), chk.stdout
    assert "key mismatch (bad signature)" in chk.stdout
    nokey = view("--timeout", "1", t["a"])
    assert nokey.returncode == 2 and "key mismatch (signature required)" in nokey.stdout

    # metricd logs it with the source address and port (a known one here).
    src_port = mxb.free_port("127.0.0.5")
    n = mu.nonce()
    err = mu.udp_ask(A, int(t["a"].split(":")[1]), mu.request(77, n, b"wrong"),
                     source="127.0.0.5", source_port=src_port)
    assert mu.parse_error(err, 77, n, mu.SECRET) == (mu.CODE_BADSIG, False)
    log = next(d for d in daemons.started if d.name == f"metricd-{A}").log()
    assert f'poll from 127.0.0.5:{src_port}: bad signature (key "lb-key")' in log, log
    assert re.search(r'poll from 127\.0\.0\.\d+:\d+: signature required \(key "lb-key"\)',
                     log), log


def test_key_mismatch_with_an_unkeyed_agent(daemons):
    _, port, _ = mu.start_agent(daemons, A, key=False)
    r = view("--json", "--timeout", "1", "--key-file", mu.key_file(daemons), f"{A}:{port}")
    host = json.loads(r.stdout)["hosts"][0]
    assert r.returncode == 2 and host["key_mismatch"], r.stdout
    assert host["error"].startswith("key mismatch (agent has no key"), host


ACCEPTING = [
    # (accepting object or None, sessions open/max, flag, metricview reason, /status reason)
    ({"ok": True}, (3, 50), 0, None, None),
    (None, (3, 50), 0, None, None),
    ({"ok": False, "reason": "sessions-full", "detail": "50 of 50"}, (50, 50),
     mu.F_RELAY_FULL, "relay at max-sessions", "relay at max-sessions"),
    (None, (50, 50), mu.F_RELAY_FULL, "relay at max-sessions", "relay at max-sessions"),
    ({"ok": False, "reason": "queue-unwritable", "detail": "mkstemp: Permission denied"},
     (3, 50), mu.F_QUEUE_FAIL, "queue not writable", "queue not writable"),
    ({"ok": False, "reason": "disk-reserve", "detail": "12 MiB free, reserve 64 MiB"},
     (3, 50), mu.F_DISK_RESERVE, "disk below reserve", "disk below reserve"),
    ({"ok": False, "reason": "paused", "detail": "relayctl hold"}, (3, 50),
     mu.F_PAUSED, "relay paused", "relay paused"),
    ({"ok": False, "reason": "moon-phase"}, (3, 50),
     mu.F_PAUSED, "relay paused", "relay not accepting: moon-phase"),
]


def _poll_flags(port):
    n = mu.nonce()
    return mu.parse_reply(mu.udp_ask(A, port, mu.request(5, n)), 5, n)


@pytest.mark.parametrize("accepting,sessions,flag,view_reason,status_reason", ACCEPTING,
                         ids=["ok", "absent", "full", "full-by-count", "queue", "disk",
                              "paused", "unknown-reason"])
def test_relay_accepting_reaches_the_reply(daemons, accepting, sessions, flag, view_reason,
                                           status_reason):
    relay = mu.RelayStatus("127.0.0.14", sessions[0], sessions[1], accepting)
    try:
        d, port, http = mu.start_agent(
            daemons, A, key=False, extra=f"    relay-status 127.0.0.14 port {relay.port};\n")
        mu.wait_for(lambda: mxb.http_json(A, http)["relay"]["ok"], 5, "relay read")
        v = _poll_flags(port)
        assert v["flags"] & mu.F_RELAY
        assert v["flags"] & 0x01e4 == flag, hex(v["flags"])
        s = mxb.http_json(A, http)
        assert s["available"] is (flag == 0)
        assert s["unavailable_reason"] == status_reason
        r = view(f"{A}:{port}")
        assert r.returncode == 0, r.stdout
        h = json.loads(view("--json", f"{A}:{port}").stdout)["hosts"][0]
        assert h["available"] is (flag == 0) and h["unavailable"] == view_reason
        if flag:
            assert v["rating"] == 0 and h["rating"] == 0
            assert f"unavailable: {view_reason}" in r.stdout
            assert s["relay"]["accepting"]["ok"] is False
            if accepting and "detail" in accepting:
                assert s["relay"]["accepting"]["detail"] == accepting["detail"]
                assert accepting["detail"] in d.log()
            assert "not available: " + status_reason in d.log()
        else:
            assert v["rating"] > 0 and "unavailable" not in r.stdout
        _, _, prom = mxb.http_get(A, http, "/metrics")
        assert f"mxbroker_metric_available {0 if flag else 1}" in prom
    finally:
        relay.stop()


def test_relay_returns_when_it_has_room_and_dead_relay_is_unavailable(daemons):
    relay = mu.RelayStatus("127.0.0.14", 50, 50)
    try:
        d, port, http = mu.start_agent(
            daemons, A, key=False, extra=f"    relay-status 127.0.0.14 port {relay.port};\n")
        mu.wait_for(lambda: _poll_flags(port)["flags"] & mu.F_RELAY_FULL, 5, "full")
        relay.doc["sessions"]["open"] = 10
        mu.wait_for(lambda: not _poll_flags(port)["flags"] & 0x01e4, 5, "room again")
        assert _poll_flags(port)["rating"] > 0
        assert "available: the relay takes mail again" in d.log()
    finally:
        relay.stop()
    mu.wait_for(lambda: _poll_flags(port)["flags"] & mu.F_RELAY_DOWN, 8, "relay-down")
    v = _poll_flags(port)
    assert v["rating"] == 0 and not v["flags"] & mu.F_RELAY
    s = mxb.http_json(A, http)
    assert s["available"] is False and s["unavailable_reason"] == "relay not answering"
    r = view(f"{A}:{port}")
    assert "relay-down" in r.stdout and "unavailable: relay not answering" in r.stdout


def test_one_slow_relay_answer_is_not_a_dead_relay(daemons):
    """A fetch that times out once keeps the last figures (the member stays
    available); timeouts in a row make the relay not answering."""
    relay = mu.RelayStatus("127.0.0.14", 10, 50)
    try:
        _, port, http = mu.start_agent(
            daemons, A, key=False, extra=f"    relay-status 127.0.0.14 port {relay.port};\n")
        mu.wait_for(lambda: _poll_flags(port)["flags"] & mu.F_RELAY, 5, "relay figures")
        relay.slow = 1
        seen = relay.served
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert not _poll_flags(port)["flags"] & mu.F_RELAY_DOWN, "one timeout took it out"
            time.sleep(0.2)
        assert relay.served > seen + 1, "the slow fetch and a later one were made"
        relay.slow = 3
        mu.wait_for(lambda: _poll_flags(port)["flags"] & mu.F_RELAY_DOWN, 12, "relay-down")
        assert mxb.http_json(A, http)["unavailable_reason"] == "relay not answering"
    finally:
        relay.slow = 0
        relay.stop()


def test_dead_relay_port_from_the_start(daemons):
    dead = mxb.free_port("127.0.0.14")
    _, port, http = mu.start_agent(
        daemons, A, key=False, extra=f"    relay-status 127.0.0.14 port {dead};\n")
    v = _poll_flags(port)
    assert v["flags"] & mu.F_RELAY_DOWN and v["rating"] == 0
    h = json.loads(view("--json", f"{A}:{port}").stdout)["hosts"][0]
    assert h["ok"] and h["available"] is False and h["unavailable"] == "relay not answering"
