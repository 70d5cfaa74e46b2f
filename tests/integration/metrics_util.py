"""metrics_util - helpers for the metricd/metricview integration tests.

An independent Python implementation of the poll protocol, written from
docs/protocol-metrics.md (not from the C code), so the tests check the
specification as well as the programs.
"""
import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mxb

MAGIC = b"MXBM"
VERSION = 1
T_REQUEST, T_REPLY, T_ERROR = 1, 2, 3
H_SIGNED = 0x0001
HEADER = struct.Struct("!4sBBHI8s")          # 20 bytes
REPLY_BODY = struct.Struct("!iiiiIHHIIQQQI")  # 60 bytes
TAG_LEN = 32
SECRET_B64 = "bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg=="
SECRET = b"merge me into a real key\n"

FLAGS = {0x0001: "draining", 0x0002: "relay", 0x0004: "relay-down",
         0x0008: "cpu-derived", 0x0010: "memory-penalty", 0x0020: "relay-full",
         0x0040: "queue-fail", 0x0080: "disk-reserve", 0x0100: "paused"}
# The flags that say "this member cannot take mail right now".
UNAVAILABLE = {0x0004: "relay not answering", 0x0020: "relay at max-sessions",
               0x0040: "queue not writable", 0x0080: "disk below reserve",
               0x0100: "relay paused"}
F_RELAY, F_RELAY_DOWN, F_RELAY_FULL = 0x0002, 0x0004, 0x0020
F_QUEUE_FAIL, F_DISK_RESERVE, F_PAUSED = 0x0040, 0x0080, 0x0100

# Error codes; 3..5 are key mismatches, answered unsigned.
CODE_VERSION, CODE_MALFORMED, CODE_NO_KEY, CODE_BADSIG, CODE_SIG_REQUIRED = 1, 2, 3, 4, 5
ERROR_LEN = 28


def sign(key, body):
    return body + hmac.new(key, body, hashlib.sha256).digest() if key else body


def request(seq, nonce, key=None):
    hdr = HEADER.pack(MAGIC, VERSION, T_REQUEST, H_SIGNED if key else 0, seq, nonce)
    return sign(key, hdr + bytes(28))


def reply(seq, nonce, values, key=None):
    """values: dict with the reply body fields (missing ones are 0)."""
    fields = ["rating", "availability", "workload", "penalty", "load", "cpu_rating",
              "flags", "sessions", "capacity", "free_bytes", "goal_bytes",
              "computed_ms", "interval"]
    body = REPLY_BODY.pack(*[values.get(f, 0) for f in fields])
    hdr = HEADER.pack(MAGIC, VERSION, T_REPLY, H_SIGNED if key else 0, seq, nonce)
    return sign(key, hdr + body)


def parse_reply(data, seq, nonce, key=None):
    """Validate like the C client; returns a dict or raises ValueError."""
    magic, version, typ, flags, rseq, rnonce = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or typ != T_REPLY:
        raise ValueError("not a version-1 reply")
    signed = bool(flags & H_SIGNED)
    if len(data) != 80 + (TAG_LEN if signed else 0):
        raise ValueError(f"length {len(data)}")
    if bool(key) != signed:
        raise ValueError("signature presence mismatch")
    if key and not hmac.compare_digest(
            hmac.new(key, data[:80], hashlib.sha256).digest(), data[80:]):
        raise ValueError("bad tag")
    if rseq != seq or rnonce != nonce:
        raise ValueError("sequence or nonce mismatch")
    names = ["rating", "availability", "workload", "penalty", "load", "cpu_rating",
             "flags", "sessions", "capacity", "free_bytes", "goal_bytes",
             "computed_ms", "interval"]
    return dict(zip(names, REPLY_BODY.unpack_from(data, 20)))


def parse_error(data, seq, nonce, key=None):
    """Validate an error packet like the C client; returns (code, signed).

    A signed error must verify with key.  An unsigned one is taken by a keyed
    client only when its code is a key mismatch (3, 4 or 5)."""
    magic, version, typ, flags, rseq, rnonce = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or typ != T_ERROR:
        raise ValueError("not a version-1 error")
    signed = bool(flags & H_SIGNED)
    if len(data) != ERROR_LEN + (TAG_LEN if signed else 0):
        raise ValueError(f"length {len(data)}")
    code, ours, reserved = struct.unpack_from("!HHI", data, 20)
    if signed and not (key and hmac.compare_digest(
            hmac.new(key, data[:ERROR_LEN], hashlib.sha256).digest(), data[ERROR_LEN:])):
        raise ValueError("bad or unexpected tag")
    if key and not signed and code not in (CODE_NO_KEY, CODE_BADSIG, CODE_SIG_REQUIRED):
        raise ValueError("unsigned error to a signed request")
    if rseq != seq or rnonce != nonce or reserved != 0:
        raise ValueError("sequence, nonce or reserved bytes")
    return code, signed


def error(seq, nonce, code, key=None):
    hdr = HEADER.pack(MAGIC, VERSION, T_ERROR, H_SIGNED if key else 0, seq, nonce)
    return sign(key, hdr + struct.pack("!HHI", code, VERSION, 0))


def udp_ask(host, port, packet, timeout=2.0, source=None, source_port=0):
    """Send one datagram; return the reply bytes or None on timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, source_port))
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        try:
            data, _ = s.recvfrom(4096)
            return data
        except socket.timeout:
            return None


def agent_conf(host, port, http_port, cpu_rating=50, key=True, extra=""):
    keydef = f'key "lb-key" {{ algorithm hmac-sha256; secret "{SECRET_B64}"; }};\n'
    return (keydef +
            f"metrics {{\n    listen {host} port {port};\n"
            f"    http-listen {host} port {http_port};\n"
            f"    compute-interval 1;\n    cpu-rating {cpu_rating};\n"
            f"    capacity 100;\n" + ('    key "lb-key";\n' if key else "") +
            extra + "};\n")


def start_agent(daemons, host, cpu_rating=50, key=True, extra="", name=None):
    """Start metricd on host; returns (daemon, udp port, http port) once it
    has computed its first rating."""
    port = mxb.free_port(host)
    http_port = mxb.free_port(host)
    name = name or f"metricd-{host}"
    d = daemons.mxbroker("metricd", agent_conf(host, port, http_port, cpu_rating, key, extra),
                         ready=lambda: is_ready(host, http_port), name=name)
    return d, port, http_port


def is_ready(host, http_port):
    try:
        return mxb.http_json(host, http_port)["ready"] is True
    except (OSError, AssertionError, KeyError, ValueError):
        return False


def key_file(daemons):
    return daemons.write("lb.key", SECRET_B64 + "\n")


class RelayStatus:
    """A stand-in for smtp-relayd's GET /status on loopback; `accepting` is
    the relay's accepting object (None: left out, as older relays do).
    Change self.doc to change the answer."""

    def __init__(self, host, open_, max_, accepting=None):
        self.doc = {"program": "smtp-relayd", "sessions": {"open": open_, "max": max_}}
        if accepting is not None:
            self.doc["accepting"] = accepting
        outer = self

        self.slow = 0  # answer the next `slow` requests only after 3 s
        self.served = 0
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                with lock:
                    outer.served += 1
                    slow = outer.slow > 0
                    outer.slow -= slow
                if slow:
                    time.sleep(3)
                body = json.dumps(outer.doc).encode()
                self.send_response(200 if self.path == "/status" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = mxb.free_port(host)
        # One thread a request: a slow answer must not hold back the next
        # fetch (with one thread, "one slow answer" became two timeouts in a
        # row whenever the next fetch waited a little longer for it).
        self.server = ThreadingHTTPServer((host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class FakeAgent(mxb.UdpResponder):
    """A UDP agent on `host` that answers each request via `respond(sock, data,
    peer)`; runs in a thread until stop()."""

    def __init__(self, host, respond):
        super().__init__(host, 0, respond)


def wait_for(probe, timeout=10.0, what="condition"):
    mxb.wait_until(probe, timeout, what)


def nonce():
    return os.urandom(8)


def now_ms():
    return int(time.time() * 1000)
