"""broker_util - start brokerd on a zone and ask it questions (dnspython)."""
import os
import socket

import dns.flags
import dns.message
import dns.query
import dns.rdatatype

import mxb

ORIGIN = "mail.example.test"

# One zone with every case the answer rules name: exact, CNAME inside and
# outside the zone, wildcard, delegation with glue, empty non-terminal,
# MX/SRV additional processing, no DNSKEY (an unsigned zone).
ZONE = """$ORIGIN mail.example.test.
$TTL 300
@       IN SOA ns1 hostmaster 2024010101 3600 900 604800 60
@       NS  ns1
@       NS  ns2.other.test.
@       MX  10 mx1
@       MX  20 mx2
@       TXT "v=spf1 -all"
ns1     A   192.0.2.1
mx1     A   192.0.2.2
mx1     AAAA 2001:db8::2
mx2     A   192.0.2.3
smtp    A   192.0.2.11
smtp    A   192.0.2.12
smtp    A   192.0.2.13
smtp    A   192.0.2.14
smtp    A   192.0.2.15
smtp    A   192.0.2.16
www     CNAME mx1
www2    CNAME www
ext     CNAME www.other.test.
dangling CNAME nope
cw      CNAME x.wild
*.wild  A   192.0.2.9
*.wild  TXT "wild"
*.cn    CNAME mx2
sub     NS  ns.sub
sub     NS  ns.other.test.
ns.sub  A   192.0.2.53
e.nt    A   192.0.2.77
_smtp._tcp SRV 0 5 25 mx1
txt     TXT "hello" "world"
ptr     PTR mx1
"""

BIG = "".join('big TXT "%s"\n' % (("%02d" % i) * 40) for i in range(40))


class Broker:
    """A running brokerd: .port (DNS), .status (HTTP), .zone (file path)."""

    def __init__(self, daemons, zone_text=ZONE, extra="", zone_extra="", threads=1,
                 name="brokerd", ready=True):
        self.port = mxb.free_port()
        self.status = mxb.free_port()
        self.zone = daemons.write(f"{name}.zone", zone_text)
        self.conf_text = (
            f"broker {{ listen {{ 127.0.0.1 port {self.port}; }}; threads {threads};\n"
            f"  status-listen 127.0.0.1 port {self.status}; {extra}\n"
            f'  zone "{ORIGIN}" {{ file "{self.zone}"; {zone_extra} }};\n}};\n')
        probe = None
        if ready:
            http = mxb.http_ok("127.0.0.1", self.status)
            udp = mxb.udp_bound("127.0.0.1", self.port)
            probe = lambda: http() and udp()  # noqa: E731
        self.d = daemons.mxbroker("brokerd", self.conf_text, ready=probe, name=name)

    def ask(self, name, rdtype="A", tcp=False, rd=False, payload=None, want_dnssec=False,
            version=0, timeout=3):
        q = dns.message.make_query(qualify(name), rdtype, use_edns=payload is not None,
                                   payload=payload or 1232, want_dnssec=want_dnssec)
        if payload is not None and version:
            q.use_edns(edns=version, payload=payload)
        if not rd:
            q.flags &= ~dns.flags.RD
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=self.port, timeout=timeout)
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout,
                             ignore_trailing=True)

    def raw(self, data, timeout=1.0):
        """Send raw bytes over UDP; the reply bytes or None."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(data, ("127.0.0.1", self.port))
            return s.recv(65535)
        except socket.timeout:
            return None
        finally:
            s.close()

    def serial(self, tcp=False):
        r = self.ask("@", "SOA", tcp=tcp)
        return r.answer[0][0].serial


def qualify(name):
    if name == "@":
        return ORIGIN + "."
    if name.endswith("."):
        return name
    return f"{name}.{ORIGIN}."


def rrsets(section):
    """A section as a set of comparable texts (RRsets as sets of records)."""
    out = set()
    for rrset in section:
        rds = tuple(sorted(rd.to_text() for rd in rrset))
        out.add((rrset.name.to_text().lower(), rrset.ttl,
                 dns.rdatatype.to_text(rrset.rdtype), rds))
    return out


def write_zone(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def nsd_server_conf(d, port, extra=""):
    """The server: and remote-control: part of an nsd.conf for a private NSD
    in folder d on 127.0.0.1@port (no chroot, no user change, no database)."""
    return f"""server:
  ip-address: 127.0.0.1@{port}
  username: ""
  pidfile: "{d}/nsd.pid"
  zonesdir: "{d}"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  chroot: ""
{extra}remote-control:
  control-enable: no
"""


def knot_server_conf(d, port, db):
    """The server:, log: and database: part of a knot.conf for a private
    Knot in folder d on 127.0.0.1@port, its databases in d/db."""
    return f"""server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
log:
  - target: stderr
    any: info
database:
    storage: "{d}/{db}"
"""


def ask_udp(port, name, rdtype):
    """A question to the server on 127.0.0.1@port; the reply or None."""
    try:
        q = dns.message.make_query(name + ".", rdtype)
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=0.5)
    except Exception:
        return None


def serial_at(port, zone):
    """The SOA serial 127.0.0.1@port serves for zone, or None."""
    r = ask_udp(port, zone, "SOA")
    return r.answer[0][0].serial if r is not None and r.answer else None


def addrs_at(port, name):
    """The set of A addresses 127.0.0.1@port answers for name."""
    r = ask_udp(port, name, "A")
    return {rd.address for rs in (r.answer if r else []) for rd in rs}
