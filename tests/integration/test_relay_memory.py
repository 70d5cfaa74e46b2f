"""Bounded memory (issue 16): DATA goes to the queue's tmp/ as it arrives,
so 100 sessions each sending a 10 MB message at once keep smtp-relayd's
peak RSS under 64 MB; every message is acknowledged and committed whole;
a client that leaves in the middle of DATA leaves no file in tmp/."""
import os
import socket
import threading

import mxb
from relay_util import Relay

SESSIONS = 100
MESSAGE_SIZE = 10_000_000
RSS_LIMIT_KB = 64 * 1024
EXTRA = "max-sessions 200; max-sessions-per-client 200;"


def make_body(size):
    """Header, then 78-octet lines, some starting with a dot (stuffed on the
    wire), the final dot; returns (wire octets, content after unstuffing)."""
    head = b"Subject: big\r\nMessage-ID: <big@client.test>\r\n\r\n"
    plain = [head]
    n = len(head)
    i = 0
    while n < size:
        line = (b"." if i % 1000 == 7 else b"x") + b"%077d\r\n" % i
        plain.append(line)
        n += len(line)
        i += 1
    content = b"".join(plain)
    wire = content.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    return wire, content


def vm_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def queue_content(relay, qid):
    """The content of queue/<qid> (docs/queue-format.md), read directly."""
    with open(os.path.join(relay.spool, "queue", qid), "rb") as f:
        data = f.read()
    header, rest = data.split(b"\n", 1)
    _, envlen, clen = header.split()
    start = int(envlen) + 1
    return rest[start:start + int(clen)]


def send_one(relay, wire, barrier, results, k):
    try:
        c = relay.connect(timeout=120)
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<sender@client.test>")[0] == 250
        assert c.cmd("RCPT TO:<rcpt@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        barrier.wait(60)  # every session is in DATA: the messages arrive at once
        c.send(wire)
        results[k] = c.reply()
        c.cmd("QUIT")
        c.close()
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        results[k] = (0, repr(e))
        barrier.abort()


def test_100_sessions_of_10mb_stay_under_64mb(daemons):
    relay = Relay(daemons, extra=EXTRA)
    wire, content = make_body(MESSAGE_SIZE)
    results = [None] * SESSIONS
    barrier = threading.Barrier(SESSIONS)
    threads = [threading.Thread(target=send_one, args=(relay, wire, barrier, results, k))
               for k in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    hwm = vm_kb(relay.d.pid, "VmHWM")
    print(f"\nsmtp-relayd peak RSS (VmHWM) after {SESSIONS} x {len(content)} octets: "
          f"{hwm / 1024:.1f} MB (limit {RSS_LIMIT_KB // 1024} MB)")
    bad = [r for r in results if r is None or r[0] != 250]
    assert not bad, f"{len(bad)} of {SESSIONS} not accepted, e.g. {bad[:3]}"
    ids = sorted(r[1].split()[-1] for r in results)
    assert len(set(ids)) == SESSIONS
    assert set(ids) <= set(relay.queue_ids())
    assert relay.queue_files("tmp") == []
    got = queue_content(relay, ids[SESSIONS // 2])
    assert got.startswith(b"Received: ")
    assert got.endswith(content), "the committed content is not the message sent"
    # analyze reads all 1 GB of the queue: no time bound of the product, so
    # room for ASan on a busy disk (30 s were not enough there).
    assert relay.ctl_json("analyze", timeout=180)["damaged"] == 0
    if mxb.sanitized("smtp-relayd"):
        # ASan holds freed memory back (quarantine, 256 MB) and adds redzones
        # and shadow: the bound is the plain build's, checked by the plain
        # pass of make test; under ASan the rest is checked.
        return
    assert hwm < RSS_LIMIT_KB, f"peak RSS {hwm} kB >= {RSS_LIMIT_KB} kB"


def test_disconnect_mid_data_leaves_no_tmp_file(daemons):
    relay = Relay(daemons, extra=EXTRA)
    wire, _ = make_body(3_000_000)
    tmp = os.path.join(relay.spool, "tmp")
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<sender@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<rcpt@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(wire[:2_000_000])
    # The content is on disk before the final dot: that is the point.
    mxb.wait_until(lambda: any(n.endswith(".data") for n in os.listdir(tmp)), 10,
                   "a spool file in tmp/")
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()
    mxb.wait_until(lambda: relay.queue_files("tmp") == [], 10, "tmp/ to be empty")
    assert relay.queue_ids() == []
    # The relay still serves, and a whole message still commits from a spool.
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    code, text = c.transaction("sender@client.test", ["rcpt@example.test"], wire)
    assert code == 250, text
    c.cmd("QUIT")
    assert relay.queue_files("tmp") == []
    assert len(relay.queue_ids()) == 1


def test_too_big_while_spooling_is_refused_and_removed(daemons):
    relay = Relay(daemons, extra=EXTRA + " max-message-size 1M;")
    wire, _ = make_body(1_500_000)
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    code, text = c.transaction("sender@client.test", ["rcpt@example.test"], wire)
    assert code == 552, text
    # The spool file goes when the size is passed, but its unlink runs on a
    # disk worker (after a write in hand, if any): it may still be there at
    # the 552 on a busy machine.  It must go all the same.
    mxb.wait_until(lambda: relay.queue_files("tmp") == [], 10, "the spool file to go")
    assert relay.queue_ids() == []
    # Just under the limit is taken (the check counts unstuffed octets).
    wire, content = make_body(1024 * 1024 - 600)
    code, text = c.transaction("sender@client.test", ["rcpt@example.test"], wire)
    assert code == 250, text
    assert queue_content(relay, text.split()[-1]).endswith(content)
    c.cmd("QUIT")
