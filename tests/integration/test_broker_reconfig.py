"""SIGHUP reconfigures brokerd as `nsd-control reconfig` does: zones added
and removed, listen addresses added and removed, without losing a query on
the listeners that stay; a bad file changes nothing (issue 14)."""
import signal
import socket
import threading
import time

import dns.message
import dns.query
import dns.rcode

import mxb

KEEP, OLD, NEW = "keep.test", "mail.example.test", "other.test"


def zone_text(origin, serial=2024010101):
    return (f"$ORIGIN {origin}.\n$TTL 300\n"
            f"@ IN SOA ns1 hostmaster {serial} 3600 900 604800 60\n"
            f"@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n")


class Reconf:
    """brokerd with a configuration file the test rewrites and SIGHUPs."""

    def __init__(self, daemons, zones, ports, threads=2):
        self.daemons = daemons
        self.status = mxb.free_port()
        self.files = {z: daemons.write(f"{z}.zone", zone_text(z)) for z in (KEEP, OLD, NEW)}
        self.path = daemons.write("brokerd.conf", self.text(zones, ports, threads))
        http = mxb.http_ok("127.0.0.1", self.status)
        udp = mxb.udp_bound("127.0.0.1", ports[0])
        self.d = daemons.start("brokerd", [mxb.binary("brokerd"), "-c", self.path],
                               ready=lambda: http() and udp())
        self.reloads = 0

    def text(self, zones, ports, threads=2, extra=""):
        listen = " ".join(f"127.0.0.1 port {p};" for p in ports)
        zs = "".join(f'  zone "{z}" {{ file "{self.files[z]}"; }};\n' for z in zones)
        return (f'options {{ directory "{self.daemons.dir}"; }};\n'
                f"broker {{ listen {{ {listen} }}; threads {threads};\n"
                f"  status-listen 127.0.0.1 port {self.status};\n{zs}}};\n{extra}")

    def reload(self, text):
        with open(self.path, "w") as f:
            f.write(text)
        self.reloads += 1
        self.d.signal(signal.SIGHUP)
        mxb.wait_until(lambda: self.state()["reloads"] >= self.reloads, 5, "reload")

    def state(self):
        return mxb.http_json("127.0.0.1", self.status)


def ask(port, name, tcp=False, timeout=2):
    q = dns.message.make_query(name, "A")
    if tcp:
        return dns.query.tcp(q, "127.0.0.1", port=port, timeout=timeout)
    return dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout)


class Querier:
    """Asks the unchanged listener over and over, in a thread; every
    timeout or wrong answer is recorded."""

    def __init__(self, port, name):
        self.port, self.name = port, name
        self.errors, self.count = [], 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            try:
                r = ask(self.port, self.name, tcp=self.count % 10 == 9, timeout=1)
                if r.rcode() != dns.rcode.NOERROR or not r.answer:
                    self.errors.append(f"query {self.count}: {dns.rcode.to_text(r.rcode())}")
            except Exception as e:  # a timeout is the failure looked for
                self.errors.append(f"query {self.count}: {type(e).__name__}: {e}")
            self.count += 1

    def stop(self):
        self.running = False
        self.thread.join(5)


def test_zones_and_listeners_follow_sighup(daemons):
    p1, p2 = mxb.free_port(), mxb.free_port()
    b = Reconf(daemons, [KEEP, OLD], [p1])
    assert ask(p1, f"www.{OLD}.").rcode() == dns.rcode.NOERROR
    assert ask(p1, f"www.{NEW}.").rcode() == dns.rcode.REFUSED
    q = Querier(p1, f"www.{KEEP}.")
    try:
        # Add a zone and a listen address.
        b.reload(b.text([KEEP, OLD, NEW], [p1, p2]))
        for port in (p1, p2):
            r = ask(port, f"www.{NEW}.")
            assert r.rcode() == dns.rcode.NOERROR and r.answer, r
            assert ask(port, f"www.{NEW}.", tcp=True).answer
        assert {z["name"] for z in b.state()["zones"]} == {KEEP, OLD, NEW}
        # Remove a zone and the added address.
        b.reload(b.text([KEEP, NEW], [p1]))
        assert ask(p1, f"www.{OLD}.").rcode() == dns.rcode.REFUSED
        assert ask(p1, f"www.{OLD}.", tcp=True).rcode() == dns.rcode.REFUSED
        assert ask(p1, f"www.{NEW}.").answer
        mxb.wait_until(lambda: not mxb.udp_bound("127.0.0.1", p2)(), 5, "udp closed")
        assert not mxb.tcp_open("127.0.0.1", p2)()
        # Back and forth several times under load.
        for i in range(5):
            b.reload(b.text([KEEP, NEW] + ([OLD] if i % 2 == 0 else []),
                            [p1, p2] if i % 2 == 0 else [p1]))
        assert ask(p2, f"www.{OLD}.").answer
        # A file that does not load changes nothing.
        before = b.state()["reload_failures"]
        b.reload(b.text([KEEP], [p1]) + "broker {\n")
        assert b.state()["reload_failures"] == before + 1
        assert ask(p2, f"www.{OLD}.").answer and ask(p1, f"www.{NEW}.").answer
        assert "the running configuration stays in force" in b.d.log()
        time.sleep(0.5)  # the querier keeps going across the last reload
    finally:
        q.stop()
    assert q.count > 50, q.count
    assert q.errors == [], q.errors[:5]
    log = b.d.log()
    assert f"zone {NEW}: added" in log and f"zone {OLD}: removed" in log, log
    assert f"listen: now also on 127.0.0.1:{p2}" in log, log
    assert f"listen: no longer on 127.0.0.1:{p2}" in log, log
    assert b.d.proc.poll() is None


def test_unbindable_address_keeps_listeners(daemons):
    p1, busy = mxb.free_port(), mxb.free_port()
    b = Reconf(daemons, [KEEP], [p1], threads=1)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", busy))
    blocker.listen(1)
    try:
        b.reload(b.text([KEEP, NEW], [p1, busy]))
    finally:
        blocker.close()
    st = b.state()
    assert st["reload_failures"] == 1, st
    # The zone change stands; the listeners are the previous ones.
    assert ask(p1, f"www.{NEW}.").answer
    assert "still listening on the previous ones" in b.d.log()
    # Once the port is free, the next SIGHUP takes it.
    b.reload(b.text([KEEP, NEW], [p1, busy]))
    assert ask(busy, f"www.{NEW}.").answer
    assert b.state()["reload_failures"] == 1


def test_first_zone_opens_dns(daemons):
    """Started with no zone (no DNS socket), a zone added by SIGHUP is served."""
    p1 = mxb.free_port()
    status = mxb.free_port()
    conf = daemons.write("b.conf", f'options {{ directory "{daemons.dir}"; }};\n'
                         f"broker {{ listen {{ 127.0.0.1 port {p1}; }};\n"
                         f"  status-listen 127.0.0.1 port {status}; }};\n")
    d = daemons.start("brokerd", [mxb.binary("brokerd"), "-c", conf],
                      ready=mxb.http_ok("127.0.0.1", status))
    zf = daemons.write("k.zone", zone_text(KEEP))
    with open(conf, "a") as f:
        f.write(f'broker {{ zone "{KEEP}" {{ file "{zf}"; }}; }};\n')
    text = open(conf).read().replace(
        f"status-listen 127.0.0.1 port {status}; }};\nbroker {{",
        f"status-listen 127.0.0.1 port {status};")
    with open(conf, "w") as f:
        f.write(text)
    d.signal(signal.SIGHUP)
    mxb.wait_until(mxb.udp_bound("127.0.0.1", p1), 5, "DNS socket")
    assert ask(p1, f"www.{KEEP}.").answer
