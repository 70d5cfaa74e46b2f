"""smtp-relayd under load (issue 16): trusted clients are exempt from
max-sessions-per-client, queue-max-messages bounds the queue (452 at MAIL,
/status "queue-full", metricd's disk-reserve flag), and the HTTP status
endpoint cannot be pinned by idle or slow clients."""
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

import metrics_util as mu
import mxb
from relay_util import Relay

UNTRUSTED = "127.0.0.2"  # outside trusted-networks (127.0.0.1/32 in Relay)


def open_sessions(relay, n, source=None):
    """Open n SMTP sessions at once (threads); returns (sockets, banners)."""
    socks, banners, lock = [], [], threading.Lock()

    def one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(15)
        if source:
            s.bind((source, 0))
        s.connect((relay.host, relay.port))
        line = s.makefile("rb").readline().decode()
        with lock:
            socks.append(s)
            banners.append(line)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return socks, banners


def ehlo_all(socks):
    codes = []
    for s in socks:
        s.sendall(b"EHLO client.test\r\n")
        f = s.makefile("rb")
        while True:
            line = f.readline().decode()
            if not line or line[3:4] != "-":
                codes.append(line[:3])
                break
    return codes


def close_all(socks):
    for s in socks:
        s.close()


@pytest.mark.parametrize("n", [20, 100])
def test_trusted_client_is_not_limited_per_client(daemons, n):
    relay = Relay(daemons, extra="max-sessions-per-client 10;")
    socks, banners = open_sessions(relay, n)
    try:
        assert len(banners) == n
        assert all(b.startswith("220 ") for b in banners), [b for b in banners if b[:3] != "220"]
        assert ehlo_all(socks) == ["250"] * n
        assert relay.status()["sessions"]["open"] == n
    finally:
        close_all(socks)


def test_smtp_source_20_sessions_from_a_trusted_client(daemons):
    """The issue's reproduction: smtp-source -s 20 against the default limit."""
    if shutil.which("smtp-source") is None:
        pytest.skip("smtp-source (postfix) is not installed")
    relay = Relay(daemons, extra="max-sessions-per-client 10;")
    r = subprocess.run(["smtp-source", "-s", "20", "-m", "40", "-c", "-f", "s@client.test",
                        "-t", "rcpt@example.test", f"{relay.host}:{relay.port}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "421" not in r.stdout + r.stderr
    mxb.wait_until(lambda: len(relay.queue_files()) == 40, 10, "40 queued")


def test_untrusted_client_is_still_limited(daemons):
    relay = Relay(daemons, extra="max-sessions-per-client 10;")
    socks, banners = open_sessions(relay, 10, source=UNTRUSTED)
    try:
        assert all(b.startswith("220 ") for b in banners), banners
        extra, more = open_sessions(relay, 1, source=UNTRUSTED)
        socks += extra
        assert more[0].startswith("421 4.7.0") and "from your address" in more[0], more
        trusted, tb = open_sessions(relay, 15)
        socks += trusted
        assert all(b.startswith("220 ") for b in tb), tb
    finally:
        close_all(socks)


# ---- queue-max-messages ----

def send_one(relay, tag):
    c = relay.connect()
    try:
        assert c.cmd("EHLO client.test")[0] == 250
        code, text = c.cmd("MAIL FROM:<sender@client.test>")
        if code != 250:
            return code, text
        assert c.cmd("RCPT TO:<rcpt@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(f"Subject: {tag}\r\n\r\nbody {tag}\r\n.\r\n".encode())
        return c.reply()
    finally:
        c.close()


def test_queue_max_messages(daemons):
    relay = Relay(daemons, extra="queue-max-messages 3;")
    for i in range(3):
        code, text = send_one(relay, f"m{i}")
        assert code == 250, text
    code, text = send_one(relay, "over")
    assert code == 452 and "4.3.1" in text, (code, text)
    a = relay.status()["accepting"]
    assert a["ok"] is False and a["reason"] == "queue-full", a
    assert "3 messages queued, limit 3" in a["detail"], a
    assert relay.status()["queue"]["max_messages"] == 3
    _, _, prom = mxb.http_get("127.0.0.1", relay.status_port, "/metrics")
    assert 'mxbroker_smtp_not_accepting{reason="queue-full"} 1' in prom, prom
    assert "mxbroker_relay_queue_max_messages 3" in prom
    # metricd maps it to the disk-reserve flag: the member leaves the answer.
    host = "127.0.0.11"
    _, port, http = mu.start_agent(
        daemons, host, key=False,
        extra=f"    relay-status 127.0.0.1 port {relay.status_port};\n")
    mu.wait_for(lambda: mu.parse_reply(mu.udp_ask(host, port, mu.request(5, n := mu.nonce())),
                                       5, n)["flags"] & mu.F_DISK_RESERVE, 8, "disk-reserve flag")
    assert mxb.http_json(host, http)["available"] is False
    send_one(relay, "again")
    log = relay.d.log()
    assert len(re.findall(r"not accepting mail: queue holds queue-max-messages", log)) == 1, log
    relay.ctl("remove", relay.queue_ids()[0])
    mxb.wait_until(lambda: relay.status()["accepting"]["ok"], 5, "accepting again", relay.d.proc)
    code, text = send_one(relay, "room")
    assert code == 250, text
    assert "accepting mail again" in relay.d.log()


def test_queue_max_messages_zero_is_no_limit(daemons):
    relay = Relay(daemons, extra="queue-max-messages 0;")
    for i in range(5):
        assert send_one(relay, f"m{i}")[0] == 250
    assert relay.status()["accepting"]["ok"] is True


# ---- the HTTP status endpoint ----

def http_status_in_time(relay, timeout=3.0):
    s = socket.create_connection(("127.0.0.1", relay.status_port), timeout=timeout)
    try:
        s.sendall(b"GET /status HTTP/1.0\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n", 1)[0].split(b" ", 1)[1]
    finally:
        s.close()


def closed_within(sock, seconds):
    """Seconds until the peer closed sock, or None if it is still open after `seconds`."""
    start = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


# Serial (docs/testing.md): the status listener's timeouts are timing claims.
@pytest.mark.serial
def test_status_http_idle_connections_cannot_shut_it_out(daemons):
    relay = Relay(daemons)
    # Few descriptors, as a busy daemon would have left: the idle
    # connections alone would use them all without the cap.
    subprocess.run(["prlimit", f"--pid={relay.d.pid}", "--nofile=96:96"], check=True)
    idle = []
    try:
        for _ in range(150):
            idle.append(socket.create_connection(("127.0.0.1", relay.status_port), timeout=5))
        time.sleep(0.5)  # let the relay accept them (or run out of descriptors)
        start = time.monotonic()
        assert http_status_in_time(relay, 3.0) == b"200 OK"
        assert time.monotonic() - start < 3.0
    finally:
        close_all(idle)
    assert relay.d.proc.poll() is None


# Serial (docs/testing.md): the status listener's timeouts are timing claims.
@pytest.mark.serial
def test_status_http_idle_connection_is_closed(daemons):
    relay = Relay(daemons)
    s = socket.create_connection(("127.0.0.1", relay.status_port), timeout=5)
    t = closed_within(s, 9)
    s.close()
    assert t is not None and 3.0 <= t <= 8.0, t


# Serial (docs/testing.md): the status listener's timeouts are timing claims.
@pytest.mark.serial
def test_status_http_trickling_client_is_closed(daemons):
    """A client sending a byte a second never completes a request: closed
    all the same (a per-read timeout would keep it forever)."""
    relay = Relay(daemons)
    s = socket.create_connection(("127.0.0.1", relay.status_port), timeout=5)
    start = time.monotonic()
    closed = False
    try:
        for ch in b"GET /status HTTP/1.1\r\nX-Slow: " + b"a" * 20:
            s.sendall(bytes([ch]))
            time.sleep(0.5)
            if time.monotonic() - start > 9:
                break
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        closed = closed_within(s, 1) is not None
    s.close()
    assert closed and time.monotonic() - start < 9.5
    assert http_status_in_time(relay) == b"200 OK"
