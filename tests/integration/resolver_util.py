"""resolver_util - fixtures for the resolver tests: an NSD authoritative
server with test zones on loopback, mxroute runs against it, and tiny
misbehaving DNS servers (SERVFAIL, silent) written with dnspython."""
import json
import os

import dns.flags
import dns.message
import dns.query
import dns.rcode

import mxb
from conftest import require_tool

SOA = "@ 300 SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.53\n"


def zone_text(origin, body, ttl=300):
    return f"$ORIGIN {origin}.\n$TTL {ttl}\n{SOA}{body}"


def dns_answers(port, name):
    """Probe: true once NSD answers SOA for `name` authoritatively."""
    def probe():
        q = dns.message.make_query(name, "SOA")
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
        except (OSError, dns.exception.Timeout):
            return False
        return r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.AA)
    return probe


def start_nsd(daemons, zones):
    """Start NSD in the foreground serving {origin: zone text}; returns port."""
    nsd = require_tool("nsd")
    port = mxb.free_port()
    d = daemons.dir
    lines = [
        "server:",
        f"    ip-address: 127.0.0.1@{port}",
        '    username: ""',
        '    chroot: ""',
        f'    zonesdir: "{d}"',
        f'    pidfile: "{d}/nsd.pid"',
        f'    zonelistfile: "{d}/nsd.zonelist"',
        f'    xfrdfile: "{d}/nsd.xfrd"',
        f'    xfrdir: "{d}"',
        '    database: ""',
        "    server-count: 1",
        "    verbosity: 1",
        "    rrl-ratelimit: 0",
        "    minimal-responses: no",
        "remote-control:",
        "    control-enable: no",
    ]
    for origin, text in zones.items():
        daemons.write(f"{origin}.zone", text)
        lines += ["zone:", f"    name: {origin}", f'    zonefile: "{origin}.zone"']
    conf = daemons.write("nsd.conf", "\n".join(lines) + "\n")
    daemons.start("nsd", [nsd, "-d", "-c", conf],
                  ready=dns_answers(port, next(iter(zones))))
    return port


def resolver_conf(daemons, port, extra="", relay="", name="mxroute.conf"):
    """Write an mxroute configuration pointing at 127.0.0.1 port `port`."""
    text = (f'options {{ directory "{daemons.dir}"; }};\n'
            f"resolver {{\n    nameservers {{ 127.0.0.1 port {port}; }};\n"
            f"    timeout 1s; attempts 1;\n{extra}}};\n"
            f'relay {{\n    hostname "relay1.example.test";\n{relay}}};\n')
    return daemons.write(name, text)


def mxroute(conf, *args, timeout=30):
    """Run mxroute -c conf ARGS; returns CompletedProcess."""
    return mxb.run("mxroute", "-c", conf, *args, timeout=timeout)


def route(conf, *dests, explain=False):
    """Route with --json; returns (exit status, [result objects]).  The
    output is one object, {"routes": [one result per destination]}."""
    args = ["--json"] + (["--explain"] if explain else []) + list(dests)
    r = mxroute(conf, *args)
    assert r.returncode in (0, 1, 2), f"mxroute failed: {r.returncode} {r.stderr}"
    doc = json.loads(r.stdout)
    assert isinstance(doc, dict) and list(doc) == ["routes"], r.stdout
    return r.returncode, doc["routes"]


def hosts_of(result):
    return [h["host"] for h in result["hops"]]


class FakeDNS(mxb.UdpResponder):
    """A UDP DNS server on loopback that answers every query with `rcode`,
    or never answers when rcode is None.  Counts the queries it saw."""

    def __init__(self, rcode=dns.rcode.SERVFAIL):
        self.rcode = rcode
        super().__init__("127.0.0.1", 0, self._answer)

    @property
    def queries(self):
        return self.requests

    def _answer(self, sock, data, peer):
        if self.rcode is None:
            return
        try:
            q = dns.message.from_wire(data)
        except Exception:
            return
        r = dns.message.make_response(q)
        r.set_rcode(self.rcode)
        sock.sendto(r.to_wire(), peer)


def dead_port():
    """A loopback UDP port where nothing listens: a connected UDP socket
    gets ECONNREFUSED (ICMP port unreachable) when it sends there."""
    return mxb.free_port()


def write_postfix_dir(daemons):
    """A minimal Postfix config directory so postmap runs without /etc/postfix/main.cf."""
    d = os.path.join(daemons.dir, "postfix")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "main.cf"), "w") as f:
        f.write("compatibility_level = 3.6\n")
    return d
