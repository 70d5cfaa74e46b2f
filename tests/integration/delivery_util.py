"""delivery_util - helpers for the delivery tests: a scriptable SMTP sink in
Python (per-recipient replies, PIPELINING, records every message), a relay
with a resolver section pointing at NSD, and small waiting helpers."""
import email
import email.policy
import os
import threading

import mxb
from relay_util import Relay


class Sink:
    """An SMTP server on (host, port) that accepts mail and records it.

    rcpt_replies maps a recipient (lower case) to the reply line for RCPT;
    data_reply is the reply after the final dot; both may be changed while
    the sink runs.  Each delivered message is a dict with sender, rcpts,
    data (bytes, dot-unstuffed) and the MAIL FROM parameters."""

    def __init__(self, host, port, ehlo=True, pipelining=True, eightbit=True,
                 size=None):
        self.host, self.port = host, port
        self.ehlo, self.pipelining, self.eightbit, self.size = ehlo, pipelining, eightbit, size
        self.rcpt_replies = {}
        self.default_rcpt = "250 2.1.5 ok"
        self.data_reply = "250 2.0.0 queued"
        self.messages = []
        self.connections = 0
        self.peers = []  # the client address of every connection
        self.lock = threading.Lock()
        self.listener = mxb.TcpResponder(host, port, self._accepted, backlog=64)

    def close(self):
        self.listener.close()

    def _accepted(self, conn):
        with self.lock:
            self.connections += 1
            try:
                self.peers.append(conn.getpeername()[0])
            except OSError:
                pass
        threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(30)
        f = conn.makefile("rb")
        out = lambda line: conn.sendall(line.encode() + b"\r\n")
        try:
            out("220 sink.test ESMTP")
            self._commands(f, out)
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def _ehlo(self, out):
        ext = (["PIPELINING"] if self.pipelining else []) + \
              (["8BITMIME"] if self.eightbit else []) + \
              ([f"SIZE {self.size}" if self.size else "SIZE"])
        lines = ["sink.test"] + ext
        for i, line in enumerate(lines):
            out(("250 " if i == len(lines) - 1 else "250-") + line)

    def _commands(self, f, out):
        sender, rcpts, params = None, [], ""
        while True:
            raw = f.readline()
            if not raw:
                return
            line = raw.decode("latin-1").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                if self.ehlo:
                    self._ehlo(out)
                else:
                    out("502 5.5.2 no EHLO here")
            elif verb == "HELO":
                out("250 sink.test")
            elif verb == "MAIL":
                rest = line[10:]
                sender = rest[1:rest.index(">")]
                params = rest[rest.index(">") + 1:].strip()
                rcpts = []
                out("250 2.1.0 ok")
            elif verb == "RCPT":
                r = line[8:].strip()[1:-1]
                reply = self.rcpt_replies.get(r.lower(), self.default_rcpt)
                if reply.startswith("2"):
                    rcpts.append(r)
                out(reply)
            elif verb == "DATA":
                if not rcpts:
                    out("554 5.5.1 no valid recipients")
                    continue
                out("354 go ahead")
                data = self._read_data(f)
                reply = self.data_reply
                if reply.startswith("2"):
                    with self.lock:
                        self.messages.append({"sender": sender, "rcpts": rcpts,
                                              "data": data, "params": params})
                out(reply)
            elif verb == "QUIT":
                out("221 2.0.0 bye")
                return
            elif verb == "RSET":
                sender, rcpts = None, []
                out("250 2.0.0 ok")
            else:
                out("250 2.0.0 ok")

    @staticmethod
    def _read_data(f):
        lines = []
        while True:
            raw = f.readline()
            if not raw:
                raise ValueError("eof in data")
            if raw == b".\r\n":
                return b"".join(lines)
            if raw.startswith(b"."):
                raw = raw[1:]
            lines.append(raw)

    def wait_messages(self, n, timeout=20, relay=None):
        mxb.wait_until(lambda: len(self.messages) >= n, timeout,
                       f"{n} messages at the sink {self.host}",
                       proc=relay.d.proc if relay else None)
        return self.messages


def parse(data):
    """A delivered message (bytes) as an email.message.EmailMessage."""
    return email.message_from_bytes(data, policy=email.policy.default)


class DeliveryRelay(Relay):
    """smtp-relayd with a resolver section (NSD on port dns_port, zones,
    optional gateway) and delivery settings in `extra`."""

    def __init__(self, daemons, dns_port, extra="", zones=("remote.test", "sender.test"),
                 gateway=None):
        self.dns_port = dns_port
        self.zones = zones
        self.gateway = gateway
        self.hosts = daemons.write("hosts", "# empty\n")
        # Explicit, so that a fixture default of "queue only" never applies here.
        if "hold-delivery" not in extra:
            extra = "hold-delivery no; " + extra
        super().__init__(daemons, extra=extra)

    def config_text(self):
        zones = " ".join(f'"{z}";' for z in self.zones)
        gw = f'    gateway "{self.gateway}";\n' if self.gateway else ""
        return super().config_text() + (
            "resolver {\n"
            f"    nameservers {{ 127.0.0.1 port {self.dns_port}; }};\n"
            f"    zones {{ {zones} }};\n{gw}"
            "    timeout 1s; attempts 1;\n"
            f'    hosts "{self.hosts}";\n'
            "};\n")

    def reload(self, extra):
        """Rewrite the configuration with new relay statements and SIGHUP."""
        import signal
        self.extra = extra
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        self.d.signal(signal.SIGHUP)

    def maildir(self, user):
        return os.path.join(self.dir, "mail", user)

    def delivery(self):
        return self.status()["delivery"]


def message(sender, rcpts, subject="test", body="Hello.\r\n", extra_headers=""):
    """A small RFC 5322 message as bytes ending in CRLF.CRLF (for DATA)."""
    text = (f"From: <{sender}>\r\nTo: {', '.join('<%s>' % r for r in rcpts)}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '-')}@client.test>\r\n"
            f"{extra_headers}\r\n{body}")
    return text.encode() + b".\r\n"


def send(relay, sender, rcpts, **kw):
    """One SMTP transaction to the relay; returns the queue ID."""
    c = relay.connect()
    c.cmd("EHLO client.test")
    code, text = c.transaction(sender, rcpts, message(sender, rcpts, **kw))
    c.cmd("QUIT")
    c.close()
    assert code == 250, text
    return text.split()[-1]


class _NotingReader:
    """Reads lines from f and notes RSET, MAIL and QUIT on the sink.  A
    plain object, not a closure: no reference cycle keeps the socket open
    after the sink hangs up."""

    def __init__(self, f, sink):
        self.f, self.sink = f, sink

    def readline(self):
        raw = self.f.readline()
        verb = raw[:4].decode("latin-1").upper()
        if verb in ("RSET", "MAIL", "QUIT"):
            self.sink._event(verb)
        return raw


class ReuseSink(Sink):
    """A Sink that notes when connections open and close and when RSET,
    MAIL and QUIT arrive (events: (time, what)); it can hang up right after
    each message's final reply, or wait `delay` seconds before giving it."""

    def __init__(self, host, port, hangup=False, delay=0.0, **kw):
        self.hangup, self.delay = hangup, delay
        self.events = []
        super().__init__(host, port, **kw)

    def _event(self, what):
        import time
        with self.lock:
            self.events.append((time.monotonic(), what))

    def count(self, what):
        with self.lock:
            return sum(1 for _, w in self.events if w == what)

    def _accepted(self, conn):
        self._event("connect")
        super()._accepted(conn)

    def _session(self, conn):
        try:
            super()._session(conn)
        finally:
            self._event("close")

    def _commands(self, f, out):
        import time
        sink = self

        def reply(line):
            final = line == sink.data_reply
            if final and sink.delay:
                time.sleep(sink.delay)
            out(line)
            if final and sink.hangup:
                raise ValueError("hang up after the message")
        return super()._commands(_NotingReader(f, self), reply)


class GreetingFailer:
    """Accepts TCP connections, waits `delay` seconds, says 421 and closes:
    a next hop that fails at the greeting."""

    def __init__(self, host, port, delay=0.5):
        self.delay = delay
        self.connections = 0
        self.listener = mxb.TcpResponder(host, port, self._accepted, backlog=64)

    def close(self):
        self.listener.close()

    def _accepted(self, conn):
        self.connections += 1
        threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        import time
        try:
            time.sleep(self.delay)
            conn.sendall(b"421 4.3.2 busy, try later\r\n")
        except OSError:
            pass
        finally:
            conn.close()
