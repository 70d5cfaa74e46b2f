"""appliance - the mxbroker appliance built on a netlab Lab.

    switch namespace: bridge br0, 10.53.0.0/24
    broker   10.53.0.100 (host address, the kernel's preferred source)
             10.53.0.1   (service address: DNS :53, /status :8053)  brokerd
    m1..m3   10.53.0.11-13  metricd :4331 + smtp-relayd :25   cluster smtp.
    m4, m5   10.53.0.14-15  the same, on impairable links      cluster edge.
    knot     10.53.0.5   Knot secondary (NOTIFY accepted from 10.53.0.1 only)
    nsd      10.53.0.6   NSD secondary  (NOTIFY accepted from 10.53.0.1 only)
    client   10.53.0.50  where the lab's probes and SMTP clients live

Every mxbroker daemon runs as the operator guide says: started as root,
binding its well-known port, then running as `nobody`.
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import time

import dnsprobe
import netlab

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MXB_BIN", os.path.join(TOP, "build", "bin"))

ORIGIN = "mail.example.test"
SMTP = "smtp." + ORIGIN          # the cluster the faults hit
EDGE = "edge." + ORIGIN          # the cluster on impaired links
NET = "10.53.0"
BROKER_HOST, BROKER = f"{NET}.100", f"{NET}.1"
KNOT, NSD, CLIENT = f"{NET}.5", f"{NET}.6", f"{NET}.50"
FAILOVER = f"{NET}.29"
MEMBERS = {f"m{i}": f"{NET}.{10 + i}" for i in range(1, 6)}
SMTP_MEMBERS = ["m1", "m2", "m3"]
EDGE_MEMBERS = ["m4", "m5"]
STATUS_PORT, METRIC_PORT, METRIC_HTTP, RELAY_STATUS = 8053, 4331, 8431, 8025

# Timing of the clusters (seconds): short, so that the lab is quick.
POLL = 2             # polling-interval of smtp.
EDGE_POLL = 1        # polling-interval of edge. (120 polls in two minutes)
REFRESH = 1          # dns-refresh
TTL = 5              # dns-ttl
FALL, RISE = 3, 1
COMPUTE = 1          # metricd compute-interval (how often it reads its relay)
MAX_SESSIONS = 5
QUEUE_TMPFS = "16m"
QUEUE_MIN_FREE = "4M"

SECRET = "bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg=="
WRONG_SECRET = "bm90IHRoZSBrZXkgdGhlIGJyb2tlciBob2xkcwo="
NOBODY = pwd.getpwnam("nobody")

ZONE = f"""$ORIGIN {ORIGIN}.
$TTL 3600
@     IN SOA ns1 hostmaster 2024010101 3600 600 1209600 60
@     IN NS  ns1
@     IN NS  ns2
@     IN NS  ns3
ns1   IN A   {BROKER}
ns2   IN A   {KNOT}
ns3   IN A   {NSD}
smtp  IN A   {NET}.99
edge  IN A   {NET}.98
"""


def binary(name):
    return os.path.join(BIN, name)


def keydef(secret=SECRET):
    return f'key "lb-key" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'


def options(directory):
    return f'options {{ directory "{directory}"; user "nobody"; }};\n'


def write(path, text, owner=None):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)
    if owner:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def own_dir(path):
    """A folder the daemons may write after dropping to nobody."""
    os.makedirs(path, exist_ok=True)
    os.chown(path, NOBODY.pw_uid, NOBODY.pw_gid)
    os.chmod(path, 0o755)


class Member:
    """One member host: smtp-relayd (queue on its own small tmpfs) and
    metricd reading the relay's /status."""

    def __init__(self, app, name, host):
        self.app = app
        self.name = name
        self.host = host
        self.addr = host.addr
        self.relay = None
        self.metricd = None
        self.secret = SECRET
        self.spool = os.path.join(host.dir, "spool")
        own_dir(host.dir)
        app.lab.mount_tmpfs(self.spool, QUEUE_TMPFS, NOBODY.pw_uid, NOBODY.pw_gid)
        self.relay_conf = os.path.join(host.dir, "smtp-relayd.conf")
        self.metricd_conf = os.path.join(host.dir, "metricd.conf")
        self.starts = 0

    def relay_text(self):
        reserve = f"    queue-min-free {QUEUE_MIN_FREE};\n" if self.app.has_queue_min_free else ""
        return (options(self.host.dir) +
                f"resolver {{ nameservers {{ 127.0.0.1; }}; timeout 1s; attempts 1; }};\n"
                f"relay {{\n    listen {{ {self.addr}; }};\n"
                f'    hostname "{self.name}.{ORIGIN}";\n'
                f'    local-aliases {{ "{ORIGIN}"; }};\n'
                f'    relay-domains {{ "example.test"; }};\n'
                f"    trusted-networks {{ {NET}.0/24; }};\n"
                f"    max-sessions {MAX_SESSIONS}; max-sessions-per-client {MAX_SESSIONS};\n"
                f'    queue-directory "spool";\n'
                f"    hold-delivery yes;\n" + reserve +
                f"    status-listen 127.0.0.1 port {RELAY_STATUS};\n}};\n")

    def metricd_text(self):
        cpu = 40 + 5 * int(self.name[1:])
        return (options(self.host.dir) + keydef(self.secret) +
                f"metrics {{\n    listen {self.addr} port {METRIC_PORT};\n"
                f"    http-listen {self.addr} port {METRIC_HTTP};\n"
                f"    compute-interval {COMPUTE};\n    cpu-rating {cpu};\n"
                f"    relay-status 127.0.0.1 port {RELAY_STATUS};\n"
                f'    key "lb-key";\n}};\n')

    def start_relay(self):
        write(self.relay_conf, self.relay_text())
        self.starts += 1
        self.relay = self.app.lab.start(self.host, f"smtp-relayd-{self.starts}",
                                        [binary("smtp-relayd"), "-c", self.relay_conf])
        netlab.wait_until(self.relay_ready, 15, f"smtp-relayd on {self.name}", self.relay)

    def relay_ready(self):
        return dnsprobe.http_json(self.host.ns, "127.0.0.1", RELAY_STATUS) is not None

    def start_metricd(self, secret=SECRET):
        self.secret = secret
        write(self.metricd_conf, self.metricd_text())
        self.starts += 1
        self.metricd = self.app.lab.start(self.host, f"metricd-{self.starts}",
                                          [binary("metricd"), "-c", self.metricd_conf])
        netlab.wait_until(self.metricd_ready, 15, f"metricd on {self.name}", self.metricd)

    def metricd_ready(self):
        doc = dnsprobe.http_json(self.app.client.ns, self.addr, METRIC_HTTP)
        return bool(doc and doc.get("ready"))

    def relayctl_ids(self):
        """The IDs in the relay's queue, by smtp-relayctl list --json."""
        out = netlab.sh("ip", "netns", "exec", self.host.ns, binary("smtp-relayctl"),
                        "-c", self.relay_conf, "list", "--json")
        return {m["id"] for m in json.loads(out)["messages"]}


class Broker:
    """brokerd on the broker host, serving ORIGIN with the two clusters."""

    def __init__(self, app, host):
        self.app = app
        self.host = host
        own_dir(host.dir)
        self.conf = os.path.join(host.dir, "brokerd.conf")
        self.zone = write(os.path.join(host.dir, f"{ORIGIN}.zone"), ZONE)
        self.smtp_members = list(SMTP_MEMBERS)
        self.proc = None
        self.starts = 0

    def text(self):
        members = " ".join(f"{MEMBERS[m]};" for m in self.smtp_members)
        edge = " ".join(f"{MEMBERS[m]};" for m in EDGE_MEMBERS)
        timing = f"dns-ttl {TTL}; dns-refresh {REFRESH}; fall {FALL}; rise {RISE};"
        return (options(self.host.dir) + keydef() +
                f"broker {{\n    listen {{ {BROKER}; }};\n"
                f"    status-listen {BROKER} port {STATUS_PORT};\n"
                f'    zone "{ORIGIN}" {{\n        file "{self.zone}";\n'
                f"        allow-transfer {{ {KNOT}; {NSD}; }};\n"
                f"        also-notify {{ {KNOT}; {NSD}; }};\n    }};\n}};\n"
                f'cluster "{SMTP}" {{\n    {timing} polling-interval {POLL};\n'
                f"    max-members 3; members {{ {members} }};\n"
                f'    failover {FAILOVER}; key "lb-key";\n}};\n'
                f'cluster "{EDGE}" {{\n    {timing} polling-interval {EDGE_POLL};\n'
                f'    max-members 2; members {{ {edge} }}; key "lb-key";\n}};\n')

    def start(self):
        write(self.conf, self.text())
        self.starts += 1
        self.proc = self.app.lab.start(self.host, f"brokerd-{self.starts}",
                                       [binary("brokerd"), "-c", self.conf])
        netlab.wait_until(lambda: self.status() is not None, 15, "brokerd", self.proc)

    def stop(self):
        self.proc.stop()

    def reload(self, smtp_members):
        """Rewrite the configuration with these smtp. members and SIGHUP."""
        self.smtp_members = list(smtp_members)
        write(self.conf, self.text())
        self.proc.signal(signal.SIGHUP)

    def status(self):
        return dnsprobe.http_json(self.app.client.ns, BROKER, STATUS_PORT)

    def member(self, addr, cluster=SMTP):
        doc = self.status() or {}
        for c in doc.get("clusters", []):
            if c.get("name") in (cluster, cluster + "."):
                for m in c.get("members", []):
                    if m.get("address") == addr:
                        return m
        return None

    def log(self):
        """Every brokerd's log of this run, oldest first."""
        return "".join(p.log() for p in self.app.lab.procs if p.name.startswith("brokerd-"))


class Secondary:
    """Knot or NSD as a secondary of ORIGIN, NOTIFY accepted from BROKER only."""

    def __init__(self, app, kind, host):
        self.app = app
        self.kind = kind
        self.host = host
        self.proc = None

    def knot_conf(self, d):
        return f"""server:
    rundir: "{d}"
    listen: {self.host.addr}@53
log:
  - target: stderr
    any: info
database:
    storage: "{d}/db"
remote:
  - id: broker
    address: {BROKER}@53
acl:
  - id: notify_from_broker
    address: {BROKER}
    action: notify
template:
  - id: default
    storage: "{d}"
zone:
  - domain: {ORIGIN}
    master: broker
    acl: notify_from_broker
    file: "{d}/secondary.zone"
"""

    def nsd_conf(self, d):
        return f"""server:
  ip-address: {self.host.addr}@53
  username: ""
  pidfile: "{d}/nsd.pid"
  zonesdir: "{d}"
  database: ""
  zonelistfile: "{d}/zone.list"
  xfrdfile: "{d}/xfrd.state"
  xfrdir: "{d}"
  chroot: ""
  verbosity: 2
remote-control:
  control-enable: no
zone:
  name: {ORIGIN}
  zonefile: "{d}/secondary.zone"
  request-xfr: {BROKER} NOKEY
  allow-notify: {BROKER} NOKEY
"""

    def start(self):
        d = self.host.dir
        os.makedirs(f"{d}/db", exist_ok=True)
        conf = write(f"{d}/{self.kind}.conf",
                     self.knot_conf(d) if self.kind == "knot" else self.nsd_conf(d))
        tool = shutil.which("knotd" if self.kind == "knot" else "nsd",
                            path="/usr/sbin:/usr/bin:/sbin:/bin")
        if not tool:
            raise RuntimeError(f"{self.kind} is not installed: run 'make deps' (as root)")
        argv = [tool, "-c", conf] if self.kind == "knot" else [tool, "-d", "-c", conf]
        self.proc = self.app.lab.start(self.host, self.kind, argv)


class Appliance:
    """The whole lab: hosts, daemons, and the three observers (brokerd, Knot, NSD)."""

    def __init__(self, lab):
        self.lab = lab
        lab.switch()
        self.client = lab.host("client", [f"{CLIENT}/24"])
        bhost = lab.host("broker", [f"{BROKER_HOST}/24", f"{BROKER}/24"])
        self.has_queue_min_free = True
        self.members = {}
        for name, addr in MEMBERS.items():
            h = lab.host(name, [f"{addr}/24"], impairable=name in EDGE_MEMBERS)
            self.members[name] = Member(self, name, h)
        self.broker = Broker(self, bhost)
        self.knot = Secondary(self, "knot", lab.host("knot", [f"{KNOT}/24"]))
        self.nsd = Secondary(self, "nsd", lab.host("nsd", [f"{NSD}/24"]))
        self.observers = {}

    def probe_queue_min_free(self):
        """Does this smtp-relayd know `queue-min-free`? (`-t` on a scratch file)"""
        m = self.members["m1"]
        path = write(os.path.join(m.host.dir, "probe.conf"), m.relay_text())
        r = subprocess.run([binary("smtp-relayd"), "-t", "-c", path], capture_output=True,
                           text=True, timeout=30)
        self.has_queue_min_free = r.returncode == 0
        if not self.has_queue_min_free:
            netlab.log("smtp-relayd refuses queue-min-free (" + r.stderr.strip() +
                       "): relays run without a disk reserve")

    def start(self):
        self.probe_queue_min_free()
        for m in self.members.values():
            m.start_relay()
            m.start_metricd()
        self.broker.start()
        netlab.log("members and brokerd are up")
        self.observers["broker"] = self.observe("broker", BROKER)
        t_start = time.monotonic()
        full = frozenset(MEMBERS[m] for m in SMTP_MEMBERS)
        edge = frozenset(MEMBERS[m] for m in EDGE_MEMBERS)
        t = self.observers["broker"].first(
            lambda s: s.sets.get(SMTP) == full and s.sets.get(EDGE) == edge,
            t_start, 30)
        if t is None:
            raise RuntimeError("brokerd never answered every member:\n" + self.broker.log()[-3000:])
        # The secondaries start from brokerd's complete answer, so that a
        # broken NOTIFY shows as a secondary that never follows a fault.
        for sec in (self.knot, self.nsd):
            sec.start()
            self.observers[sec.kind] = self.observe(sec.kind, sec.host.addr)
        for sec in (self.knot, self.nsd):
            obs = self.observers[sec.kind]
            if obs.first(lambda s: s.sets.get(SMTP) == full, t_start, 40) is None:
                raise RuntimeError(f"{sec.kind} never transferred the zone:\n" +
                                   sec.proc.log()[-3000:])
        netlab.log("knot and nsd serve the zone")

    def observe(self, label, server, period=0.1):
        """Start an Observer of server (brokerd, Knot or NSD) from the client."""
        obs = dnsprobe.Observer(label, self.client.ns, server, ORIGIN, [SMTP, EDGE], period)
        obs.start()
        return obs

    def stop_observers(self):
        for obs in self.observers.values():
            obs.stop()

    def died(self):
        """Daemons that exited without the lab asking them to."""
        return [p for p in self.lab.procs if not p.alive() and not p.expected_exit]
