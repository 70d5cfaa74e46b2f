"""dnsprobe - what a client sees: a minimal DNS client (stdlib only) and an
Observer that asks one server, many times a second, for the cluster names'
A sets and the zone's SOA serial, and keeps every answer on a monotonic
timeline.  Faults are measured against the timeline: "the first sample at
or after t0 where the answer is X", "no sample in [t0, t1] with a lower
serial"."""
import http.client
import json
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import netlab

T_A, T_SOA = 1, 6


def _qname(name):
    labels = [lab.encode() for lab in name.rstrip(".").split(".")]
    return b"".join(bytes([len(lab)]) + lab for lab in labels) + b"\0"


def _skip_name(buf, off):
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_reply(buf, qid):
    """(rcode, [(type, ttl, value)]) of the answer section; value is the
    address for A, the serial for SOA.  Raises ValueError on a mismatch."""
    rid, flags, qd, an, _, _ = struct.unpack_from("!HHHHHH", buf)
    if rid != qid or not flags & 0x8000:
        raise ValueError("not our reply")
    off = 12
    for _ in range(qd):
        off = _skip_name(buf, off) + 4
    records = []
    for _ in range(an):
        off = _skip_name(buf, off)
        rtype, _, ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
        rdata = off + 10
        if rtype == T_A:
            records.append((T_A, ttl, socket.inet_ntoa(buf[rdata:rdata + 4])))
        elif rtype == T_SOA:
            serial_at = _skip_name(buf, _skip_name(buf, rdata))
            records.append((T_SOA, ttl, struct.unpack_from("!I", buf, serial_at)[0]))
        off = rdata + rdlen
    return flags & 0x000F, records


def query(sock, name, qtype, timeout):
    """One question over a connected UDP socket: (rcode, records) or None
    when nothing (or only errors) came back within timeout."""
    qid = random.getrandbits(16)
    sock.send(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + _qname(name) +
              struct.pack("!HH", qtype, 1))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            return parse_reply(sock.recv(4096), qid)
        except (socket.timeout, ConnectionRefusedError):
            return None
        except (ValueError, struct.error, IndexError):
            continue


def http_json(ns, host, port, path="/status", timeout=3):
    """GET path from a status endpoint, from inside namespace ns; the JSON or None."""
    try:
        with netlab.inside(ns):
            conn = http.client.HTTPConnection(host, port, timeout=timeout)
            conn.connect()
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return json.loads(body) if r.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


@dataclass
class Sample:
    t: float                      # time.monotonic() when the answers were in
    begun: float = 0.0            # when the first question of the round left
    sets: dict = field(default_factory=dict)   # name -> frozenset of A, None = no answer
    ttls: dict = field(default_factory=dict)   # name -> TTL of the A RRset
    serial: int = None            # the zone's SOA serial, None = no answer


class Observer(threading.Thread):
    """Asks one DNS server for names (A) and zone (SOA) every period, from
    inside namespace ns, and appends a Sample per round to .samples."""

    def __init__(self, label, ns, server, zone, names, period=0.1, timeout=0.4):
        super().__init__(name=f"observer-{label}", daemon=True)
        self.label = label
        self.ns = ns
        self.server = server
        self.zone = zone
        self.names = list(names)
        self.period = period
        self.timeout = timeout
        self.samples = []
        self.cond = threading.Condition()
        self.running = True

    def run(self):
        netlab.enter(self.ns)  # this thread lives in the client namespace
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect((self.server, 53))
        while self.running:
            start = time.monotonic()
            self._append(self._round(sock))
            time.sleep(max(0.0, self.period - (time.monotonic() - start)))
        sock.close()

    def _round(self, sock):
        s = Sample(0.0, time.monotonic())
        for name in self.names:
            r = query(sock, name, T_A, self.timeout)
            ok = r is not None and r[0] == 0
            s.sets[name] = frozenset(v for t, _, v in r[1] if t == T_A) if ok else None
            ttls = [ttl for t, ttl, _ in r[1] if t == T_A] if ok else []
            s.ttls[name] = min(ttls) if ttls else None
        r = query(sock, self.zone, T_SOA, self.timeout)
        soa = [v for t, _, v in r[1] if t == T_SOA] if r is not None else []
        s.serial = soa[0] if soa else None
        s.t = time.monotonic()
        return s

    def _append(self, sample):
        with self.cond:
            self.samples.append(sample)
            self.cond.notify_all()

    def stop(self):
        self.running = False
        self.join(2)

    def window(self, since, until=None):
        """The samples whose questions all left at or after since (and whose
        answers were in by until)."""
        with self.cond:
            return [s for s in self.samples
                    if s.begun >= since and (until is None or s.t <= until)]

    def last(self):
        with self.cond:
            return self.samples[-1] if self.samples else None

    def find(self, pred, since, until=None):
        """The first sample of window(since, until) for which pred holds, or None."""
        return next((s for s in self.window(since, until) if pred(s)), None)

    def first(self, pred, since, timeout):
        """Wait for the first sample asked at or after since for which
        pred(sample) holds, at most until since + timeout; the time its
        answers were in, or None."""
        s = self.first_sample(pred, since, timeout)
        return s.t if s is not None else None

    def first_sample(self, pred, since, timeout):
        deadline = since + timeout
        seen = 0
        with self.cond:
            while True:
                for s in self.samples[seen:]:
                    if s.begun >= since and pred(s):
                        return s if s.t <= deadline else None
                seen = len(self.samples)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.5))
