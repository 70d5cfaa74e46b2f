"""NOTIFY (RFC 1996) to real secondaries: sent from the address the zone is
served on (or notify-source), acknowledged only by NOERROR, error answers
and silence counted as failures and retried, sent at startup too.

brokerd listens on 127.0.0.2 (a loopback alias); NSD and Knot listen on
127.0.0.1 with their own ports and accept NOTIFY only from the address
named in their ACL, as the operator guide configures them."""
import os
import signal
import socket
import threading
import time

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest

import broker_util
import mxb
from conftest import require_tool

# Serial (docs/testing.md): BOUND (secondaries serve the serial within 5 s) and
# the retry backoff (1 s, then 2 s) are the product's timing claims.
pytestmark = pytest.mark.serial

BROKER_ADDR = "127.0.0.2"
ZONES = ["a.notify.test", "b.notify.test", "c.notify.test"]
BOUND = 5.0  # seconds from SIGHUP (or start) to the secondary serving the serial


def zone_text(origin, serial):
    # refresh and retry of an hour: a secondary moves only on NOTIFY.
    return (f"$ORIGIN {origin}.\n$TTL 300\n"
            f"@ IN SOA ns1 hostmaster {serial} 3600 3600 604800 60\n"
            f"@ NS ns1\nns1 A 192.0.2.1\nmx A 192.0.2.{serial % 250 + 1}\n")


class Primary:
    """brokerd on 127.0.0.2 serving `zones` ({name: {"notify": [ports],
    "source": addr or None}}); status on 127.0.0.1."""

    def __init__(self, daemons, zones, listen=(BROKER_ADDR,), extra=""):
        self.daemons = daemons
        self.port = mxb.free_port(BROKER_ADDR)
        self.status = mxb.free_port()
        self.files = {}
        body = ""
        for name, z in zones.items():
            self.files[name] = daemons.write(f"{name}.zone", zone_text(name, 1))
            notify = " ".join(f"127.0.0.1 port {p};" for p in z["notify"])
            source = f"notify-source {z['source']};" if z.get("source") else ""
            body += (f'  zone "{name}" {{ file "{self.files[name]}"; '
                     f"allow-transfer {{ 127.0.0.0/8; }}; also-notify {{ {notify} }}; "
                     f"{source} }};\n")
        addrs = " ".join(f"{a} port {self.port};" for a in listen)
        self.conf = (f"options {{ directory \"{daemons.dir}\"; log-level debug; }};\n"
                     f"broker {{ listen {{ {addrs} }}; {extra}\n"
                     f"  status-listen 127.0.0.1 port {self.status};\n{body}}};\n")
        self.start()

    def start(self):
        http = mxb.http_ok("127.0.0.1", self.status)
        udp = mxb.udp_bound(BROKER_ADDR, self.port)
        self.d = self.daemons.mxbroker("brokerd", self.conf, ready=lambda: http() and udp())

    def set_serial(self, name, serial):
        path = self.files[name]
        with open(path + ".tmp", "w") as f:
            f.write(zone_text(name, serial))
        os.replace(path + ".tmp", path)

    def serial(self, name):
        return soa_serial(BROKER_ADDR, self.port, name)

    def notify_stats(self):
        return mxb.http_json("127.0.0.1", self.status)["notify"]

    def metric(self, result):
        _, _, body = mxb.http_get("127.0.0.1", self.status, "/metrics")
        for line in body.splitlines():
            if line.startswith("mxbroker_dns_notify_total{") and f'result="{result}"' in line:
                return int(line.split()[-1])
        return 0


def soa_serial(addr, port, name):
    try:
        q = dns.message.make_query(name + ".", "SOA")
        r = dns.query.udp(q, addr, port=port, timeout=0.5)
        return r.answer[0][0].serial if r.answer else None
    except Exception:
        return None


def start_nsd(daemons, tag, primary, allow, port):
    """NSD secondary on `port` for the zones of `allow` ({zone: address
    allowed to NOTIFY})."""
    nsd = require_tool("nsd")
    d = os.path.join(daemons.dir, tag)
    os.makedirs(d)
    zones = "".join(f"""zone:
  name: {name}
  zonefile: "{d}/{name}.zone"
  allow-notify: {addr} NOKEY
  request-xfr: AXFR {BROKER_ADDR}@{primary.port} NOKEY
""" for name, addr in allow.items())
    conf = daemons.write(f"{tag}/nsd.conf",
                         broker_util.nsd_server_conf(d, port, "  verbosity: 2\n") + zones)
    daemons.start(tag, [nsd, "-d", "-c", conf], ready=lambda: all(
        soa_serial("127.0.0.1", port, z) == primary.serial(z) for z in allow), timeout=20)
    return port


def start_knot(daemons, tag, primary, allow, port):
    """Knot secondary on `port` for the zones of `allow` ({zone: address
    allowed to NOTIFY})."""
    knotd = require_tool("knotd")
    d = os.path.join(daemons.dir, tag)
    os.makedirs(d)
    acls = "".join(f"  - id: acl{i}\n    address: {addr}\n    action: notify\n"
                   for i, addr in enumerate(allow.values()))
    zones = "".join(f"  - domain: {name}\n    master: primary\n    acl: acl{i}\n"
                    f'    file: "{d}/{name}.zone"\n'
                    for i, name in enumerate(allow))
    conf = daemons.write(f"{tag}/knot.conf", broker_util.knot_server_conf(d, port, "db") + f"""remote:
  - id: primary
    address: {BROKER_ADDR}@{primary.port}
acl:
{acls}template:
  - id: default
    storage: "{d}"
zone:
{zones}""")
    daemons.start(tag, [knotd, "-c", conf], ready=lambda: all(
        soa_serial("127.0.0.1", port, z) == primary.serial(z) for z in allow), timeout=20)
    return port


def wait_serials(secondaries, serials, what):
    """Wait until every (port, zone) serves serials[zone]; seconds taken."""
    t0 = time.monotonic()
    mxb.wait_until(lambda: all(soa_serial("127.0.0.1", p, z) == serials[z]
                               for p in secondaries for z in serials),
                   timeout=BOUND, what=what)
    return time.monotonic() - t0


def test_nsd_follows_notify_from_listen_address(daemons):
    nport = mxb.free_port()
    b = Primary(daemons, {ZONES[0]: {"notify": [nport]}})
    start_nsd(daemons, "nsd", b, {ZONES[0]: BROKER_ADDR}, nport)
    b.set_serial(ZONES[0], 7)
    b.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: b.serial(ZONES[0]) == 7, what="brokerd to serve serial 7")
    took = wait_serials([nport], {ZONES[0]: 7}, "NSD to transfer serial 7")
    print(f"\nNSD (allow-notify {BROKER_ADDR}) served serial 7 {took:.2f}s after SIGHUP")
    mxb.wait_until(lambda: f"serial 7 acknowledged by 127.0.0.1:{nport} (from {BROKER_ADDR})"
                   in b.d.log() or b.notify_stats()["acked"] >= 2, what="the ack")
    st = b.notify_stats()
    assert st["acked"] >= 1 and st["refused"] == 0, st
    assert b.metric("refused") == 0 and b.metric("acked") >= 1


def test_refused_notify_is_a_failure(daemons):
    nport = mxb.free_port()
    b = Primary(daemons, {ZONES[0]: {"notify": [nport]}})
    start_nsd(daemons, "nsd", b, {ZONES[0]: "127.0.0.9"}, nport)
    b.set_serial(ZONES[0], 8)
    b.d.signal(signal.SIGHUP)
    line = f"notify: {ZONES[0]} serial 8 to 127.0.0.1:{nport}: REFUSED"
    mxb.wait_until(lambda: line in b.d.log(), what="REFUSED logged", proc=b.d.proc)
    # Retried: a second REFUSED within the first backoff step (1 s).
    mxb.wait_until(lambda: b.notify_stats()["refused"] >= 2, timeout=4, what="a retry")
    st = b.notify_stats()
    assert st["acked"] == 0, st
    assert b.metric("acked") == 0 and b.metric("refused") >= 2
    assert "acknowledged" not in b.d.log()
    assert soa_serial("127.0.0.1", nport, ZONES[0]) == 1


@pytest.mark.parametrize("special", [0, 1, 2], ids=["first", "middle", "last"])
def test_zones_and_secondaries_each_from_their_source(daemons, special):
    """Three zones to NSD and Knot; one zone (first, middle or last) has an
    explicit notify-source 127.0.0.4, the others leave from the first listen
    address, 127.0.0.2 (brokerd also listens on 127.0.0.3).  Each secondary
    accepts each zone's NOTIFY from that zone's source only."""
    nport, kport = mxb.free_port(), mxb.free_port()
    source = {z: ("127.0.0.4" if i == special else BROKER_ADDR) for i, z in enumerate(ZONES)}
    zones = {z: {"notify": [nport, kport], "source": "127.0.0.4" if i == special else None}
             for i, z in enumerate(ZONES)}
    b = Primary(daemons, zones, listen=(BROKER_ADDR, "127.0.0.3"))
    start_nsd(daemons, "nsd", b, source, nport)
    start_knot(daemons, "knot", b, source, kport)
    for z in ZONES:
        b.set_serial(z, 5)
    b.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: all(b.serial(z) == 5 for z in ZONES), what="brokerd at 5")
    took = wait_serials([nport, kport], {z: 5 for z in ZONES}, "every secondary at 5")
    print(f"\n3 zones x (NSD, Knot), notify-source on zone {special}: all at 5 in {took:.2f}s")
    mxb.wait_until(lambda: b.notify_stats()["acked"] >= 6, what="six acks")
    st = b.notify_stats()
    assert st["refused"] == 0 and st["failed"] == 0, st
    log = b.d.log()
    assert f"{ZONES[special]} serial 5 acknowledged by 127.0.0.1:{nport} (from 127.0.0.4)" \
        in log or f"{ZONES[special]} serial 1 acknowledged by 127.0.0.1:{nport} " \
        "(from 127.0.0.4)" in log


def test_notify_at_startup(daemons):
    """A restarted brokerd serving a newer serial NOTIFYs at once: the
    secondary (refresh 1 h) transfers with no change made while it runs."""
    nport = mxb.free_port()
    b = Primary(daemons, {ZONES[1]: {"notify": [nport]}})
    start_nsd(daemons, "nsd", b, {ZONES[1]: BROKER_ADDR}, nport)
    assert b.d.stop() == 0
    b.set_serial(ZONES[1], 3)
    t0 = time.monotonic()
    b.start()
    served = b.serial(ZONES[1])
    assert served is not None and served >= 3
    mxb.wait_until(lambda: soa_serial("127.0.0.1", nport, ZONES[1]) == served,
                   timeout=BOUND, what=f"NSD to transfer serial {served} after the restart")
    print(f"\nNSD served serial {served} {time.monotonic() - t0:.2f}s after brokerd started")


class FakeSecondary:
    """A UDP socket on 127.0.0.1 that records NOTIFYs (arrival, source,
    serial, id) and answers per `mode`."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", 0))
        self.got = []
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(data)
            serial = q.answer[0][0].serial if q.answer else None
            self.got.append((time.monotonic(), peer[0], serial, q.id, peer[1]))
            self.answer(q, peer)

    def answer(self, q, peer):
        if self.mode == "silent":
            return
        r = dns.message.make_response(q)
        if self.mode == "refused":
            r.set_rcode(dns.rcode.REFUSED)
        elif self.mode == "notauth":
            r.set_rcode(dns.rcode.NOTAUTH)
        elif self.mode == "wrong_name":
            r = dns.message.make_query("other.test.", "SOA")
            r.id = q.id
            r.flags = dns.flags.QR | dns.flags.AA
            r.set_opcode(dns.opcode.NOTIFY)
        elif self.mode == "wrong_id":
            r.id = (q.id + 1) & 0xffff
        elif self.mode == "not_notify":
            r.set_opcode(dns.opcode.QUERY)
        sock = self.other if self.mode == "other_port" else self.sock
        sock.sendto(r.to_wire(), peer)

    def close(self):
        self.stop = True
        self.t.join()
        self.sock.close()
        self.other.close()


@pytest.fixture
def fake(request):
    f = FakeSecondary(request.param)
    yield f
    f.close()


@pytest.mark.parametrize("fake", ["silent", "refused", "notauth", "wrong_name", "wrong_id",
                                  "other_port", "not_notify"], indirect=True)
def test_only_noerror_from_the_peer_is_an_ack(daemons, fake):
    b = Primary(daemons, {ZONES[0]: {"notify": [fake.port]}})
    # Startup NOTIFY, then a retry after 1 s, then after 2 s more: backoff.
    mxb.wait_until(lambda: len(fake.got) >= 3, timeout=6, what="three tries")
    t = [g[0] for g in fake.got]
    assert {g[1] for g in fake.got} == {BROKER_ADDR}
    assert len({g[3] for g in fake.got}) == 1  # one NOTIFY, retried
    assert 0.8 < t[1] - t[0] < 1.9 and 1.8 < t[2] - t[1] < 3.2, t
    st = b.notify_stats()
    assert st["acked"] == 0 and b.metric("acked") == 0, st
    if fake.mode in ("refused", "notauth"):
        assert st[fake.mode] >= 2, st
        assert f"to 127.0.0.1:{fake.port}: {fake.mode.upper()} (from {BROKER_ADDR}" \
            in b.d.log()
    else:
        assert st["timeout"] >= 2, st


@pytest.mark.parametrize("fake", ["noerror"], indirect=True)
def test_noerror_is_an_ack_and_stops_retries(daemons, fake):
    b = Primary(daemons, {ZONES[0]: {"notify": [fake.port]}})
    mxb.wait_until(lambda: b.notify_stats()["acked"] == 1, what="the ack")
    assert fake.got[0][1] == BROKER_ADDR
    time.sleep(1.5)  # past the first retry: none may come
    assert len(fake.got) == 1
    st = b.notify_stats()
    assert st["sent"] == 1 and st["timeout"] == 0 and st["failed"] == 0, st
    assert f"serial 1 acknowledged by 127.0.0.1:{fake.port} (from {BROKER_ADDR})" \
        in b.d.log()


@pytest.mark.parametrize("fake", ["silent"], indirect=True)
def test_newer_serial_supersedes_a_pending_retry(daemons, fake):
    b = Primary(daemons, {ZONES[0]: {"notify": [fake.port]}})
    mxb.wait_until(lambda: len(fake.got) >= 2, timeout=4, what="a retry of serial 1")
    b.set_serial(ZONES[0], 2)
    b.d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: any(g[2] == 2 for g in fake.got), what="NOTIFY for serial 2")
    first = next(i for i, g in enumerate(fake.got) if g[2] == 2)
    mxb.wait_until(lambda: len(fake.got) >= first + 3, timeout=6, what="retries of serial 2")
    assert all(g[2] == 2 for g in fake.got[first:]), fake.got
    assert len({g[3] for g in fake.got[first:]}) == 1


def test_notify_source_explicit_port(daemons):
    """notify-source with a port: the NOTIFY leaves from exactly there."""
    f = FakeSecondary("noerror")
    try:
        src_port = mxb.free_port("127.0.0.5")
        Primary(daemons, {ZONES[2]: {"notify": [f.port],
                                     "source": f"127.0.0.5 port {src_port}"}})
        mxb.wait_until(lambda: len(f.got) >= 1, what="a NOTIFY")
        assert f.got[0][1] == "127.0.0.5" and f.got[0][4] == src_port
    finally:
        f.close()
