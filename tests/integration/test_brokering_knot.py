"""Publishing beyond brokerd: Knot as a secondary of brokerd's zone follows
every change of a cluster (NOTIFY, AXFR), and Knot as an RFC 2136 primary
receives brokerd's TSIG-signed UPDATEs (and refuses a wrong key)."""
import os

import broker_util
import brokering_util as bu
import mxb
from conftest import require_tool

H = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
UPD = "upd.example.test"
WRONG_SECRET = "d3Jvbmcgc2VjcmV0IGZvciB0aGUgdGVzdHMK"


def knot_set(port, name):
    return broker_util.addrs_at(port, name)


def knot_serial(port, zone):
    return broker_util.serial_at(port, zone)


def start_knot(daemons, port, zones, secret=bu.mu.SECRET_B64):
    d = daemons.dir
    os.makedirs(f"{d}/knotdb", exist_ok=True)  # Knot's journal (DDNS) goes there
    conf = daemons.write("knot.conf", broker_util.knot_server_conf(d, port, "knotdb") + f"""key:
  - id: lb-key
    algorithm: hmac-sha256
    secret: {secret}
{zones}""")
    return daemons.start("knotd", [require_tool("knotd"), "-c", conf])


def test_knot_secondary_follows_cluster(daemons):
    kport = mxb.free_port()
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port),
               zone_extra=f"allow-transfer {{ 127.0.0.1; }}; "
                          f"also-notify {{ 127.0.0.1 port {kport}; }};")
    lb.wait_set([H[2], H[1]], 10)
    d = daemons.dir
    k = start_knot(daemons, kport, f"""remote:
  - id: broker
    address: 127.0.0.1@{lb.port}
acl:
  - id: notify_from_broker
    address: 127.0.0.1
    action: notify
template:
  - id: default
    storage: "{d}"
zone:
  - domain: {bu.ORIGIN}
    master: broker
    acl: notify_from_broker
    file: "{d}/knot-secondary.zone"
""")
    mxb.wait_until(lambda: knot_set(kport, bu.CLUSTER) == {H[2], H[1]}, 20,
                   "knot to carry the published set", proc=k.proc)
    before = lb.serial()
    agents.stop(H[2])
    lb.wait_set([H[1], H[0]], 10)
    after = lb.serial()
    assert after > before
    mxb.wait_until(lambda: knot_serial(kport, bu.ORIGIN) == lb.serial(), 20,
                   "knot to reach brokerd's serial", proc=k.proc)
    assert knot_set(kport, bu.CLUSTER) == {H[1], H[0]}


def primary_zones(d):
    return f"""acl:
  - id: update_acl
    address: 127.0.0.1
    key: lb-key
    action: update
template:
  - id: default
    storage: "{d}"
zone:
  - domain: {UPD}
    file: "{d}/{UPD}.zone"
    acl: update_acl
"""


def write_upd_zone(daemons):
    daemons.write(f"{UPD}.zone", f"""$ORIGIN {UPD}.
$TTL 300
@    SOA ns1 hostmaster 1 3600 900 604800 60
@    NS  ns1
ns1  A   127.0.0.1
smtp A   192.0.2.99
""")


def test_knot_primary_receives_signed_update(daemons):
    kport = mxb.free_port()
    write_upd_zone(daemons)
    k = start_knot(daemons, kport, primary_zones(daemons.dir))
    mxb.wait_until(lambda: knot_serial(kport, UPD) == 1, 20, "knot primary", proc=k.proc)
    agents = bu.Agents(daemons, {H[0]: 20, H[1]: 50, H[2]: 90})
    lb = bu.LB(daemons, bu.cluster_conf(H, agents.port, name="smtp." + UPD,
                                        extra=f"    masters {{ 127.0.0.1 port {kport}; }};\n"))
    mxb.wait_until(lambda: knot_set(kport, "smtp." + UPD) == {H[2], H[1]}, 20,
                   "knot to serve the updated set", proc=k.proc)
    assert "UPDATE accepted" in lb.d.log()
    agents.stop(H[2])
    mxb.wait_until(lambda: knot_set(kport, "smtp." + UPD) == {H[1], H[0]}, 20,
                   "knot to follow the failover", proc=k.proc)
    c = lb.cluster("smtp." + UPD)
    assert c["masters"]["updates_ok"] >= 2 and c["masters"]["in_sync"]
    assert not c["in_zone"]


def test_knot_primary_refuses_wrong_key(daemons):
    kport = mxb.free_port()
    write_upd_zone(daemons)
    k = start_knot(daemons, kport, primary_zones(daemons.dir), secret=WRONG_SECRET)
    mxb.wait_until(lambda: knot_serial(kport, UPD) == 1, 20, "knot primary", proc=k.proc)
    agents = bu.Agents(daemons, {H[0]: 20})
    lb = bu.LB(daemons, bu.cluster_conf(H[:1], agents.port, name="smtp." + UPD,
                                        extra=f"    masters {{ 127.0.0.1 port {kport}; }};\n"))
    mxb.wait_until(lambda: "UPDATE refused" in lb.d.log(), 20, "refusal logged")
    log = lb.d.log()
    assert "NOTAUTH" in log and "TSIG" in log, log
    assert knot_set(kport, "smtp." + UPD) == {"192.0.2.99"}
    assert lb.cluster("smtp." + UPD)["masters"]["failures"] >= 1
