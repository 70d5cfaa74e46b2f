"""Debian's lbcd daemons as cluster members (`protocol lbcd`)."""
import brokering_util as bu
import mxb
from conftest import require_tool

HOSTS = {"127.0.0.31": "100:1", "127.0.0.32": "500:1", "127.0.0.33": "50:1"}


def start_lbcd(daemons, host, port, weight):
    lbcd = require_tool("lbcd")
    return daemons.start(f"lbcd-{host}",
                         [lbcd, "-f", "-b", host, "-p", str(port), "-w", weight,
                          "-P", f"{daemons.dir}/lbcd-{host}.pid"],
                         ready=mxb.udp_bound(host, port))


def test_lbcd_members(daemons):
    port = bu.common_port(list(HOSTS))
    d = {h: start_lbcd(daemons, h, port, w) for h, w in HOSTS.items()}
    lb = bu.LB(daemons, bu.cluster_conf(list(HOSTS), port, key=False, max_members=2,
                                        extra="    protocol lbcd;\n"))
    # lbcd: a lower weight is a better host; 50 and 100 beat 500.
    lb.wait_set(["127.0.0.33", "127.0.0.31"], 15)
    m = lb.member("127.0.0.33")
    # weight 50 -> 100 * 1000 / (1000 + 50) = 95.238
    assert abs(m["rating"] - 95.238) < 0.01, m
    assert m["inputs"]["flags"] & 0x8000  # mapped from lbcd
    d["127.0.0.33"].stop()
    lb.wait_set(["127.0.0.31", "127.0.0.32"], 3 + 1 + 4)
