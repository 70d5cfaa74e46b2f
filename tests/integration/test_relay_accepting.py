"""smtp-relayd knows and publishes whether it can take mail right now
(GET /status "accepting", /metrics smtp_accepting): sessions at max-sessions,
a queue that cannot be written (read-only remount of a tmpfs), a disk below
queue-min-free (small tmpfs), and the operator's pause.  Whatever happens,
nothing is acknowledged with 250 that is not in the queue.

The tmpfs tests mount under the test directory (root, as in CI) and skip
when mounting is not permitted; every mount is undone even when a test
fails."""
import os
import re
import smtplib
import subprocess
import time

import pytest

import mxb
from relay_util import Relay

MSG_FROM = "sender@client.test"
MSG_TO = "rcpt@example.test"


def message(size=1024, tag="x"):
    line = ("%s" % tag) * 76 + "\r\n"
    body = line * max(1, size // len(line))
    return f"From: <{MSG_FROM}>\r\nSubject: {tag}\r\n\r\n{body}"


def send(relay, size=1024, tag="x"):
    """One message with smtplib; returns (code, text) of the final answer,
    wherever it came (MAIL or DATA)."""
    with smtplib.SMTP(relay.host, relay.port, timeout=15) as s:
        s.ehlo("client.test")
        try:
            s.sendmail(MSG_FROM, [MSG_TO], message(size, tag))
        except smtplib.SMTPSenderRefused as e:
            return e.smtp_code, "MAIL: " + e.smtp_error.decode()
        except smtplib.SMTPDataError as e:
            return e.smtp_code, "DATA: " + e.smtp_error.decode()
        return 250, "queued"


def send_raw(relay, size=1024, tag="x"):
    """The same with the raw client, returning the queue ID on 250."""
    c = relay.connect()
    try:
        assert c.cmd("EHLO client.test")[0] == 250
        code, text = c.cmd(f"MAIL FROM:<{MSG_FROM}>")
        if code != 250:
            return code, "MAIL: " + text, None
        assert c.cmd(f"RCPT TO:<{MSG_TO}>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(message(size, tag).encode() + b".\r\n")
        code, text = c.reply()
        m = re.search(r"queued as ([0-9a-f]{16})", text)
        return code, "DATA: " + text, m.group(1) if code == 250 and m else None
    finally:
        c.close()


def accepting(relay):
    return relay.status()["accepting"]


def wait_accepting(relay, reason, timeout=10.0):
    """Wait until /status says ok (reason None) or not ok for `reason`;
    returns the "accepting" object and the seconds it took."""
    start = time.monotonic()

    def probe():
        a = accepting(relay)
        return a["ok"] if reason is None else (not a["ok"] and a["reason"] == reason)
    mxb.wait_until(probe, timeout, f"accepting {reason or 'ok'}", relay.d.proc)
    return accepting(relay), time.monotonic() - start


def metrics(relay):
    _, _, text = mxb.http_get("127.0.0.1", relay.status_port, "/metrics")
    return text


def metric(text, name, labels=""):
    m = re.search(r"^mxbroker_%s%s (\S+)$" % (name, re.escape(labels)), text, re.M)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def stored_ids(relay):
    return set(relay.queue_files("queue"))


# ---- a tmpfs for the spool ----

class Tmpfs:
    """A tmpfs mounted on `path` (created); umount() is idempotent."""

    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                            path], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        self.mounted = True

    def remount(self, mode):
        subprocess.run(["mount", "-o", f"remount,{mode}", self.path], check=True)

    def umount(self):
        if not self.mounted:
            return
        if subprocess.run(["umount", self.path]).returncode != 0:
            subprocess.run(["umount", "-l", self.path])
        self.mounted = False


@pytest.fixture
def spool_tmpfs(daemons):
    """Returns mount(size): a tmpfs on <test dir>/spool (the relay's default
    queue directory).  Daemons are stopped before the umount."""
    mounts = []

    def mount(size):
        t = Tmpfs(os.path.join(daemons.dir, "spool"), size)
        mounts.append(t)
        return t
    yield mount
    try:
        daemons.stop_all()
    finally:
        for t in mounts:
            t.umount()


# ---- sessions-full ----

# Serial (docs/testing.md): accepting again within 2 s is a timing claim.
@pytest.mark.serial
def test_sessions_full_and_back(daemons):
    relay = Relay(daemons, extra="max-sessions 3;")
    assert accepting(relay) == {"ok": True}
    held = [relay.connect() for _ in range(3)]
    try:
        for c in held:
            assert c.banner[0] == 220, c.banner
        a, _ = wait_accepting(relay, "sessions-full", 3)
        assert a == {"ok": False, "reason": "sessions-full",
                     "detail": "3 of 3 sessions open"}, a
        m = metrics(relay)
        assert metric(m, "smtp_accepting") == 0
        assert metric(m, "smtp_not_accepting", '{reason="sessions-full"}') == 1
        assert metric(m, "smtp_not_accepting", '{reason="paused"}') == 0
        extra = relay.connect()
        assert extra.banner[0] == 421, extra.banner
        extra.close()
    finally:
        for c in held:
            c.close()
    a, took = wait_accepting(relay, None, 5)
    assert a == {"ok": True}
    assert took <= 2.0, f"back to accepting after {took:.2f} s"
    assert metric(metrics(relay), "smtp_accepting") == 1
    log = relay.d.log()
    assert "relay: not accepting mail: all sessions in use: 3 of 3 sessions open" in log
    assert log.count("relay: accepting mail again") == 1


# ---- queue-unwritable ----

def test_queue_unwritable_readonly_fs(daemons, spool_tmpfs):
    fs = spool_tmpfs("16m")
    relay = Relay(daemons, extra="max-message-size 1M; queue-min-free 0;")
    wait_accepting(relay, None)
    acked = set()
    code, text, qid = send_raw(relay, tag="before")
    assert code == 250, text
    acked.add(qid)

    # A transaction in flight when the file system turns read-only: the
    # commit fails and the client hears 451, never 250.
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd(f"MAIL FROM:<{MSG_FROM}>")[0] == 250
    assert c.cmd(f"RCPT TO:<{MSG_TO}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    fs.remount("ro")
    try:
        c.send(message(tag="inflight").encode() + b".\r\n")
        code, text = c.reply()
        c.close()
        assert code == 451, text

        a, _ = wait_accepting(relay, "queue-unwritable", 5)
        assert "Read-only file system" in a["detail"], a
        assert a["detail"].startswith("queue: "), a
        # Now refused at MAIL already: nothing is taken that cannot be stored.
        code, text = send(relay, tag="during")
        assert code == 451 and text.startswith("MAIL: 4.3.0"), (code, text)
        m = metrics(relay)
        assert metric(m, "smtp_accepting") == 0
        assert metric(m, "smtp_not_accepting", '{reason="queue-unwritable"}') == 1
        assert stored_ids(relay) == acked
    finally:
        fs.remount("rw")
    wait_accepting(relay, None, 10)
    # The client that heard 4xx tries again: now it is queued.
    for tag in ("inflight", "during"):
        code, text, qid = send_raw(relay, tag=tag)
        assert code == 250, text
        acked.add(qid)
    assert stored_ids(relay) == acked
    assert sorted(acked) == relay.queue_ids()
    log = relay.d.log()
    assert log.count("relay: not accepting mail: queue not writable: ") == 1, log
    assert log.count("relay: accepting mail again") == 1, log


def test_queue_unwritable_permissions(daemons):
    """The daemon runs as nobody (tests run as root, where access(2) would
    say yes): tmp/ made mode 000 is found by the probe, restored is ok."""
    if os.geteuid() != 0:
        pytest.skip("needs root to start the relay as user nobody")
    relay = Relay(daemons, options='user "nobody";')
    wait_accepting(relay, None)
    tmp = os.path.join(relay.spool, "tmp")
    os.chmod(tmp, 0)
    try:
        a, took = wait_accepting(relay, "queue-unwritable", 10)
        assert a["detail"].endswith("/tmp/probe: Permission denied"), a
        code, text, _ = send_raw(relay, tag="denied")
        assert code == 451, text
        assert stored_ids(relay) == set()
    finally:
        os.chmod(tmp, 0o700)
    wait_accepting(relay, None, 5)
    code, text, qid = send_raw(relay, tag="denied")
    assert code == 250, text
    assert stored_ids(relay) == {qid}


def test_queue_full_commit_answers_452(daemons, spool_tmpfs):
    """queue-min-free off and the disk full: the commit itself fails with
    ENOSPC, the answer is 452 after DATA, nothing half-written stays."""
    spool_tmpfs("4m")
    relay = Relay(daemons, extra="max-message-size 2M; queue-min-free 0;")
    wait_accepting(relay, None)
    filler = os.path.join(relay.spool, "filler")
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
    code, text, _ = send_raw(relay, size=512 * 1024, tag="big")
    assert code in (451, 452), text
    assert code == 452 or text.startswith("MAIL"), text
    assert stored_ids(relay) == set()
    # The failed spool's unlink runs on a disk worker, possibly after the
    # answer: it must go, bounded.
    mxb.wait_until(lambda: relay.queue_files("tmp") == [], 10, "the spool file to go")
    a, _ = wait_accepting(relay, "queue-unwritable", 5)
    assert "No space left on device" in a["detail"], a
    os.unlink(filler)
    wait_accepting(relay, None, 10)
    code, text, qid = send_raw(relay, size=512 * 1024, tag="big")
    assert code == 250, text
    assert stored_ids(relay) == {qid}


# ---- disk-reserve ----

def test_disk_reserve(daemons, spool_tmpfs):
    spool_tmpfs("8m")
    relay = Relay(daemons, extra="max-message-size 1M; queue-min-free 6M;")
    wait_accepting(relay, None)
    filler = os.path.join(relay.spool, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (1536 * 1024))
    mxb.wait_until(lambda: relay.status()["queue"]["free_bytes"] < 7 << 20, 5,
                   "the relay to see the filler")
    acked, deferred = set(), 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not deferred:
        code, text, qid = send_raw(relay, size=256 * 1024, tag="fill")
        if code == 250:
            acked.add(qid)
            continue
        assert code == 452, text
        assert text == "MAIL: 452 4.3.1 Insufficient system storage", text
        deferred += 1
    assert deferred, "never refused while filling the disk"
    a, _ = wait_accepting(relay, "disk-reserve", 3)
    assert re.fullmatch(r"[0-9.]+[KM] free, reserve 6\.0M", a["detail"]), a
    st = relay.status()
    assert st["queue"]["min_free_bytes"] == 6 << 20
    assert st["queue"]["free_bytes"] < 6 << 20
    assert metric(metrics(relay), "smtp_not_accepting", '{reason="disk-reserve"}') == 1
    # smtplib too: refused at MAIL, the client keeps the message.
    code, text = send(relay, tag="refused")
    assert code == 452 and "Insufficient system storage" in text, (code, text)
    # Nothing lost: everything that got 250 is in the queue, nothing else.
    assert stored_ids(relay) == acked
    assert sorted(acked) == relay.queue_ids()
    os.unlink(filler)
    wait_accepting(relay, None, 5)
    code, text, qid = send_raw(relay, tag="after")
    assert code == 250, text
    acked.add(qid)
    assert stored_ids(relay) == acked
    assert relay.status()["counters"]["mail_deferred"] >= 2
    log = relay.d.log()
    assert "relay: not accepting mail: disk space below queue-min-free: " in log
    assert "relay: accepting mail again" in log


# ---- pause / resume ----

def test_pause_resume(daemons):
    relay = Relay(daemons)
    inside = relay.connect()
    assert inside.banner[0] == 220
    assert inside.cmd("EHLO client.test")[0] == 250

    r = relay.ctl("pause")
    assert "pause: ok" in r.stdout
    a = accepting(relay)
    assert a["ok"] is False and a["reason"] == "paused", a
    assert a["detail"], a
    c = relay.connect()
    assert c.banner == (421, "421 4.3.2 Service not available, closing transmission channel")
    assert c.closed()
    c.close()
    with pytest.raises(smtplib.SMTPConnectError) as e:
        smtplib.SMTP(relay.host, relay.port, timeout=10)
    assert e.value.smtp_code == 421
    # A session open before the pause finishes its message.
    code, _ = inside.cmd(f"MAIL FROM:<{MSG_FROM}>")
    assert code == 250
    assert inside.cmd(f"RCPT TO:<{MSG_TO}>")[0] == 250
    assert inside.cmd("DATA")[0] == 354
    inside.send(message(tag="inside").encode() + b".\r\n")
    code, text = inside.reply()
    assert code == 250, text
    inside.close()
    assert metric(metrics(relay), "smtp_not_accepting", '{reason="paused"}') == 1
    st = relay.ctl("stats")
    assert "accepting: no (paused: " in st.stdout, st.stdout
    assert relay.ctl_json("stats")["daemon"]["accepting"]["reason"] == "paused"

    r = relay.ctl("resume")
    assert "resume: ok" in r.stdout
    assert accepting(relay) == {"ok": True}
    code, text = send(relay, tag="resumed")
    assert code == 250, text
    assert len(relay.queue_ids()) == 2
    assert "accepting: yes" in relay.ctl("stats").stdout
    log = relay.d.log()
    assert "control: intake paused by the operator" in log
    assert "relay: not accepting mail: paused by the operator" in log
    assert "relay: accepting mail again" in log


def test_pause_needs_the_daemon(daemons):
    relay = Relay(daemons)
    relay.d.stop()
    r = relay.ctl("pause", check=False)
    assert r.returncode == 69, (r.returncode, r.stderr)
    assert "does not answer" in r.stderr
