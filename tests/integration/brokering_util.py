"""brokering_util - start metric agents and a brokering brokerd on loopback.

Members live on 127.0.0.x and share one metric port (a cluster has one
`metric-port`), so ports are picked free on every host at once.
"""
import os

import dns.message
import dns.query
import dns.rdatatype

import metrics_util as mu
import mxb

ORIGIN = "mail.example.test"
CLUSTER = "smtp." + ORIGIN
KEYDEF = f'key "lb-key" {{ algorithm hmac-sha256; secret "{mu.SECRET_B64}"; }};\n'

ZONE = f"""$ORIGIN {ORIGIN}.
$TTL 300
@       IN SOA ns1 hostmaster 2024010101 3600 900 604800 60
@       NS  ns1
ns1     A   127.0.0.1
smtp    A   192.0.2.99
"""


def common_port(hosts):
    """A port free (UDP and TCP) on every host."""
    for _ in range(200):
        p = mxb.free_port(hosts[0])
        if all(mxb._port_free(h, p) for h in hosts[1:]):
            return p
    raise RuntimeError("no common free port")


class Agents:
    """metricd on several loopback hosts, one shared UDP port."""

    def __init__(self, daemons, ratings, key=True, port=None, extra=None, secrets=None):
        self.daemons = daemons
        self.ratings = dict(ratings)
        self.key = key
        self.extra = dict(extra or {})      # host -> more metrics statements
        self.secrets = dict(secrets or {})  # host -> another secret (key mismatch)
        self.port = port or common_port(list(self.ratings))
        self.http = {}
        self.d = {}
        self.starts = 0
        for host in self.ratings:
            self.start(host)

    def conf(self, host):
        keydef = KEYDEF
        if host in self.secrets:
            keydef = (f'key "lb-key" {{ algorithm hmac-sha256; '
                      f'secret "{self.secrets[host]}"; }};\n')
        return (
            keydef + f"metrics {{\n    listen {host} port {self.port};\n"
            f"    http-listen {host} port {self.http[host]};\n"
            f"    compute-interval 1;\n    cpu-rating {self.ratings[host]};\n"
            f"    capacity 100;\n" + ('    key "lb-key";\n' if self.key else "") +
            f'    drain-file "{self.daemons.dir}/drain-{host}";\n' +
            self.extra.get(host, "") + "};\n")

    def start(self, host):
        self.starts += 1
        self.http.setdefault(host, mxb.free_port(host))
        self.d[host] = self.daemons.mxbroker(
            "metricd", self.conf(host), name=f"metricd-{host}-{self.starts}",
            ready=lambda: mu.is_ready(host, self.http[host]))
        return self.d[host]

    def stop(self, host):
        self.d[host].stop()

    def drain(self, host, on=True):
        """metricd --drain / --undrain with the running agent's file."""
        conf = os.path.join(self.daemons.dir, f"{os.path.basename(self.d[host].name)}.conf")
        arg = "--drain=test" if on else "--undrain"
        r = mxb.run("metricd", arg, "-c", conf)
        assert r.returncode == 0, r.stderr


def cluster_conf(members, port=None, name=CLUSTER, max_members=2, failover=None,
                 key=True, extra=""):
    """A cluster statement; members: list of strings such as '127.0.0.11'
    or '127.0.0.11 weight 2'."""
    text = (f'cluster "{name}" {{\n    dns-ttl 5; dns-refresh 1; polling-interval 1;\n'
            f"    max-members {max_members};\n"
            f"    members {{ {' '.join(m + ';' for m in members)} }};\n")
    if failover:
        text += f"    failover {failover};\n"
    if port:
        text += f"    metric-port {port};\n"
    if key:
        text += '    key "lb-key";\n'
    return text + extra + "};\n"


class LB:
    """A brokerd serving ORIGIN with clusters; .port (DNS), .status (HTTP)."""

    def __init__(self, daemons, clusters, zone_text=ZONE, broker_extra="", zone_extra="",
                 name="brokerd", port=None, status=None, zone_file=None, wait_zone=True):
        self.daemons = daemons
        self.name = name
        self.port = port or mxb.free_port()
        self.status = status or mxb.free_port()
        self.zone = zone_file or daemons.write(f"{name}.zone", zone_text)
        self.broker_extra = broker_extra
        self.zone_extra = zone_extra
        self.clusters = clusters
        self.conf_path = None
        self.starts = 0
        self.start()

    def conf_text(self):
        return (KEYDEF +
                f"broker {{ listen {{ 127.0.0.1 port {self.port}; }};\n"
                f"  status-listen 127.0.0.1 port {self.status}; {self.broker_extra}\n"
                f'  zone "{ORIGIN}" {{ file "{self.zone}"; {self.zone_extra} }};\n}};\n' +
                self.clusters)

    def start(self):
        self.starts += 1
        http = mxb.http_ok("127.0.0.1", self.status)
        udp = mxb.udp_bound("127.0.0.1", self.port)
        self.d = self.daemons.mxbroker("brokerd", self.conf_text(),
                                       name=f"{self.name}-{self.starts}",
                                       ready=lambda: http() and udp())
        self.conf_path = os.path.join(self.daemons.dir, f"{self.name}-{self.starts}.conf")
        return self.d

    def reconfigure(self, clusters):
        """Rewrite the running daemon's file and SIGHUP it."""
        import signal
        self.clusters = clusters
        text = self.conf_text()
        if "options" not in text:
            text = f'options {{ directory "{self.daemons.dir}"; }};\n' + text
        with open(self.conf_path, "w") as f:
            f.write(text)
        self.d.signal(signal.SIGHUP)

    def ask(self, name=CLUSTER, rdtype="A", payload=None, tcp=False):
        q = dns.message.make_query(name + ".", rdtype, use_edns=payload is not None,
                                   payload=payload or 1232)
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=3)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=3)

    def answer(self, name=CLUSTER, rdtype="A", payload=None):
        """The addresses answered, in order."""
        r = self.ask(name, rdtype, payload)
        return [rd.address for rrset in r.answer for rd in rrset
                if rrset.rdtype == dns.rdatatype.from_text(rdtype)]

    def answer_set(self, name=CLUSTER, rdtype="A"):
        return set(self.answer(name, rdtype))

    def wait_set(self, want, timeout, rdtype="A", name=CLUSTER):
        want = set(want)
        mxb.wait_until(lambda: self.answer_set(name, rdtype) == want, timeout,
                       f"{name} {rdtype} answer {sorted(want)} (now "
                       f"{sorted(self.answer_set(name, rdtype))})")

    def state(self):
        return mxb.http_json("127.0.0.1", self.status)

    def cluster(self, name=CLUSTER):
        return next(c for c in self.state()["clusters"] if c["name"] == name)

    def member(self, addr, name=CLUSTER):
        return next(m for m in self.cluster(name)["members"] if m["address"] == addr)

    def serial(self):
        r = self.ask(ORIGIN, "SOA")
        return r.answer[0][0].serial


class Responder(mxb.UdpResponder):
    """Answers the native poll protocol on many loopback addresses at once,
    in one thread: the load of a large fleet without a process per member.
    rating(host) -> thousandths; hosts for which it returns None are silent."""

    def __init__(self, hosts, port, rating, key=mu.SECRET):
        self.rating = rating
        self.key = key
        self.answered = 0
        super().__init__(hosts, port, self._answer, bufsize=512)

    def _answer(self, sock, data, peer):
        r = self.rating(sock.getsockname()[0])
        if r is None or len(data) < 20:
            return
        _, _, _, _, seq, nonce = mu.HEADER.unpack_from(data)
        pkt = mu.reply(seq, nonce, {"rating": r, "cpu_rating": 50, "capacity": 100,
                                    "computed_ms": mu.now_ms(), "interval": 1},
                       self.key)
        sock.sendto(pkt, peer)
        self.answered += 1


class SmtpBanner(mxb.TcpResponder):
    """A tiny SMTP greeter (220) on host:port, in a thread; close() stops it."""

    def __init__(self, host, port, banner=b"220 test ESMTP\r\n"):
        self.banner = banner
        super().__init__(host, port, self._greet)

    def _greet(self, c):
        try:
            c.sendall(self.banner)
        except OSError:
            pass
        c.close()
