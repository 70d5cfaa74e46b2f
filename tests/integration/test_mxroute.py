"""resolver: MX routing by mxroute against a real authoritative server (NSD)
on loopback, and the Postfix socketmap server queried with Debian's postmap.

Target addresses come from TEST-NET-2 (198.51.100.0/24) and 2001:db8::/32 so
that none is an address of the test machine (which would count as "self")."""
import collections
import json
import signal
import subprocess

import dns.flags
import dns.message
import dns.query
import pytest

import mxb
import resolver_util as ru
from conftest import require_tool

BIG_MX = 40     # exchanges in big.example.test: far more than 1232 octets

EXAMPLE = """
order     MX 20 mx2
order     MX 10 mx1
order     MX 30 mx3
mx1       A 198.51.100.1
mx1       AAAA 2001:db8::1
mx2       A 198.51.100.2
mx3       A 198.51.100.3
shuffle   MX 10 s1
shuffle   MX 10 s2
shuffle   MX 10 s3
shuffle   MX 20 mx3
s1        A 198.51.100.11
s2        A 198.51.100.12
s3        A 198.51.100.13
nullmx    MX 0 .
aonly     A 198.51.100.20
aonly     AAAA 2001:db8::20
nodata    TXT "no mail here"
cnamemx   MX 10 alias
alias     CNAME mx2
v6only    MX 10 v6host
v6host    AAAA 2001:db8::6
localover MX 10 mx1
gw1       A 198.51.100.50
relay1    A 198.51.100.99
selfmx    MX 5 mx1
selfmx    MX 10 relay1
selfmx    MX 20 mx2
selfonly  MX 10 relay1
selfonly  MX 20 mx2
selfaddr  MX 10 mx1
selfaddr  MX 20 me
selfaddr  MX 30 mx3
me        A 127.0.0.1
domalias  CNAME order
inhosts   MX 10 hostonly
""" + "".join(f"big MX 10 exchange-with-a-rather-long-name-{i:02d}.big\n"
              f"exchange-with-a-rather-long-name-{i:02d}.big A 198.51.100.{100 + i}\n"
              for i in range(BIG_MX))

ABC = """
relay   MX 100 mail11
relay   MX 100 mail13
relay   MX 200 mail2
relay   MX 200 mail1
relay   MX 300 mail21
relay   MX 300 mail12
""" + "".join(f"mail{n} A 198.51.100.{200 + n}\n" for n in (1, 2, 11, 12, 13, 21))

HOSTS = """# test hosts database
198.51.100.77   nxhosts.example.test
198.51.100.78   hostonly.example.test
"""

LOCAL_MX = """# domain preference gateway
! OpenVMS-style comment
LocalOver.Example.TEST   5   GW1.example.test
"""


@pytest.fixture
def nsd(daemons):
    return ru.start_nsd(daemons, {
        "example.test": ru.zone_text("example.test", EXAMPLE),
        "abc.test": ru.zone_text("abc.test", ABC),
    })


@pytest.fixture
def conf(daemons, nsd):
    daemons.write("hosts", HOSTS)
    daemons.write("local-mx.txt", LOCAL_MX)
    return ru.resolver_conf(daemons, nsd,
                            extra='    hosts "hosts";\n    local-mx "local-mx.txt";\n',
                            relay='    local-aliases { "mail.example.test"; };\n')


def one(conf, dest, explain=False):
    rc, res = ru.route(conf, dest, explain=explain)
    assert len(res) == 1
    return rc, res[0]


def test_hops_in_preference_order(conf):
    rc, r = one(conf, "order.example.test")
    assert rc == 0 and r["status"] == "ok"
    assert [(h["preference"], h["host"], h["source"]) for h in r["hops"]] == [
        (10, "mx1.example.test", "dns-mx"),
        (20, "mx2.example.test", "dns-mx"),
        (30, "mx3.example.test", "dns-mx")]
    assert r["hops"][0]["addresses"] == ["198.51.100.1", "2001:db8::1"]


def test_text_output(conf):
    r = ru.mxroute(conf, "order.example.test")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0] == "order.example.test"
    assert lines[1].split() == ["10", "mx1.example.test", "dns-mx",
                                "198.51.100.1", "2001:db8::1"]


def test_equal_preferences_shuffled(conf):
    rc, res = ru.route(conf, *["shuffle.example.test"] * 200)
    assert rc == 0 and len(res) == 200
    orders = collections.Counter(tuple(ru.hosts_of(r)[:3]) for r in res)
    assert len(orders) == 6, orders          # every order of s1, s2, s3 seen
    assert all(ru.hosts_of(r)[3] == "mx3.example.test" for r in res)


def test_null_mx_is_permanent(conf):
    rc, r = one(conf, "nullmx.example.test")
    assert rc == 1
    assert (r["status"], r["dsn"], r["smtp_code"]) == ("permanent", "5.1.10", 556)
    assert r["hops"] == []


def test_no_mx_uses_a_and_aaaa(conf):
    rc, r = one(conf, "aonly.example.test")
    assert rc == 0
    assert r["hops"] == [{"preference": 0, "host": "aonly.example.test",
                          "source": "dns-a",
                          "addresses": ["198.51.100.20", "2001:db8::20"]}]


def test_nodata_and_nxdomain_differ(conf):
    rc, res = ru.route(conf, "nodata.example.test", "nx.example.test")
    assert rc == 1
    nodata, nx = res
    assert (nodata["dsn"], nx["dsn"]) == ("5.1.2", "5.1.2")
    assert "no MX and no address records" in nodata["reason"]
    assert "NXDOMAIN" in nx["reason"] and "NXDOMAIN" not in nodata["reason"]


def test_nxdomain_found_in_hosts(conf):
    rc, r = one(conf, "nxhosts.example.test")
    assert rc == 0
    assert r["hops"] == [{"preference": 0, "host": "nxhosts.example.test",
                          "source": "hosts", "addresses": ["198.51.100.77"]}]


def test_mx_target_only_in_hosts(conf):
    rc, r = one(conf, "inhosts.example.test", explain=True)
    assert rc == 0
    assert r["hops"][0]["host"] == "hostonly.example.test"
    assert r["hops"][0]["addresses"] == ["198.51.100.78"]


def test_unreachable_nameserver_is_temporary(daemons):
    daemons.write("hosts", HOSTS)
    conf = ru.resolver_conf(daemons, ru.dead_port(), extra='    hosts "hosts";\n')
    # nxhosts is in the hosts database: a DNS failure must still not fall through.
    rc, res = ru.route(conf, "order.example.test", "nxhosts.example.test")
    assert rc == 2
    for r in res:
        assert (r["status"], r["dsn"], r["hops"]) == ("temporary", "4.4.3", [])


def test_refused_nameserver_is_not_a_timeout(daemons):
    """Nothing listens on the nameserver's port: loopback answers with ICMP
    port unreachable, the connected UDP socket gets ECONNREFUSED, and
    mxroute says so at once rather than "timed out" after the timeout."""
    port = ru.dead_port()
    conf = ru.resolver_conf(daemons, port)
    rc, r = one(conf, "order.example.test", explain=True)
    assert rc == 2
    assert r["reason"] == (f"MX lookup of order.example.test failed: connection refused "
                           f"(nameserver 127.0.0.1:{port})")
    assert "DNS MX order.example.test: connection refused" in r["steps"]
    assert not any("timed out" in s for s in r["steps"])
    text = ru.mxroute(conf, "--explain", "order.example.test")
    assert text.returncode == 2
    assert "connection refused" in text.stdout and "timed out" not in text.stdout


def test_silent_nameserver_times_out(daemons):
    fake = ru.FakeDNS(rcode=None)
    try:
        conf = ru.resolver_conf(daemons, fake.port)
        rc, r = one(conf, "order.example.test")
    finally:
        fake.close()
    assert rc == 2
    assert r["dsn"] == "4.4.3" and "timed out" in r["reason"]
    assert fake.queries == 1            # attempts 1, one server


def test_servfail_is_temporary(daemons):
    fake = ru.FakeDNS()
    try:
        conf = ru.resolver_conf(daemons, fake.port)
        rc, r = one(conf, "order.example.test")
    finally:
        fake.close()
    assert rc == 2
    assert r["status"] == "temporary" and "SERVFAIL" in r["reason"]


def test_second_nameserver_answers(daemons, nsd):
    conf = daemons.write("two.conf", f"""
resolver {{ nameservers {{ 127.0.0.1 port {ru.dead_port()}; 127.0.0.1 port {nsd}; }};
            timeout 1s; attempts 1; }};
""")
    rc, r = one(conf, "order.example.test")
    assert rc == 0 and len(r["hops"]) == 3


def test_mx_target_cname_tolerated(conf):
    rc, r = one(conf, "cnamemx.example.test", explain=True)
    assert rc == 0
    assert r["hops"][0]["host"] == "alias.example.test"     # the MX name, not the CNAME target
    assert r["hops"][0]["addresses"] == ["198.51.100.2"]
    assert any("CNAME" in s for s in r["steps"])


def test_ipv6_only_mx_target(conf):
    rc, r = one(conf, "v6only.example.test")
    assert rc == 0
    assert r["hops"][0]["addresses"] == ["2001:db8::6"]


def test_local_mx_overrides_dns(conf):
    rc, r = one(conf, "localover.example.test")
    assert rc == 0
    assert [(h["preference"], h["host"], h["source"]) for h in r["hops"]] == [
        (5, "gw1.example.test", "local-mx")]
    assert r["hops"][0]["addresses"] == ["198.51.100.50"]


def test_local_alias_is_local(conf):
    rc, r = one(conf, "postmaster@Mail.Example.Test")
    assert rc == 0 and r["status"] == "local"
    assert r["hops"][0]["source"] == "local"


def test_gateway_name_with_only_mx_records(daemons, nsd):
    """The OpenVMS example: relay.abc.test has no A record, only MX records
    at 100/200/300; mail outside the zone goes through that MX list."""
    conf = ru.resolver_conf(daemons, nsd, extra='    zones { "example.test"; };\n'
                            '    gateway "relay.abc.test";\n')
    rc, res = ru.route(conf, "someone@elsewhere.org", "order.example.test")
    assert rc == 0
    gw, inside = res
    assert [h["preference"] for h in gw["hops"]] == [100, 100, 200, 200, 300, 300]
    assert {h["source"] for h in gw["hops"]} == {"gateway"}
    assert set(ru.hosts_of(gw)[:2]) == {"mail11.abc.test", "mail13.abc.test"}
    assert set(ru.hosts_of(gw)[2:4]) == {"mail1.abc.test", "mail2.abc.test"}
    assert set(ru.hosts_of(gw)[4:]) == {"mail12.abc.test", "mail21.abc.test"}
    assert {h["source"] for h in inside["hops"]} == {"dns-mx"}


def test_local_mx_overridden_by_gateway_is_explained(daemons, nsd):
    """The gateway (outside the zones) comes before the local MX database:
    an entry for a domain outside the zones is never used, and --explain
    says so; inside the zones the entry is used."""
    daemons.write("local-mx.txt", "elsewhere.org 5 gw1.example.test\n"
                  "localover.example.test 5 gw1.example.test\n")
    conf = ru.resolver_conf(daemons, nsd, extra='    zones { "example.test"; };\n'
                            '    gateway "[198.51.100.250]";\n'
                            '    local-mx "local-mx.txt";\n')
    rc, (out, inside) = ru.route(conf, "elsewhere.org", "localover.example.test",
                                 explain=True)
    assert rc == 0
    assert [(h["host"], h["source"]) for h in out["hops"]] == [("[198.51.100.250]", "gateway")]
    assert ("local MX database: 1 entry for elsewhere.org (line 1: preference 5, "
            "gw1.example.test) overridden by gateway [198.51.100.250]: elsewhere.org is "
            "outside the zones, and the gateway comes before the local MX database"
            ) in out["steps"]
    assert [(h["host"], h["source"]) for h in inside["hops"]] == [
        ("gw1.example.test", "local-mx")]
    assert not any("overridden" in s for s in inside["steps"])
    text = ru.mxroute(conf, "--explain", "elsewhere.org")
    assert "overridden by gateway [198.51.100.250]" in text.stdout


def test_json_is_one_object_and_errors_are_json(daemons, conf):
    """--json prints one object, {"routes": [...]}, also for one destination,
    and every error as {"error": "..."} with a non-zero exit status."""
    r = ru.mxroute(conf, "--json", "order.example.test")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and list(doc) == ["routes"] and len(doc["routes"]) == 1
    assert "\\/" not in r.stdout
    missing = daemons.dir + "/missing.conf"
    for args, status in ((["-c", missing, "--json", "x.test"], 78),
                         (["-c", conf, "--json"], 64),
                         (["-c", conf, "--json", "--no-such-option", "x.test"], 64),
                         (["-c", conf, "--repeat", "many", "--json", "x.test"], 64)):
        r = mxb.run("mxroute", *args)
        assert r.returncode == status, (args, r.returncode, r.stdout, r.stderr)
        doc = json.loads(r.stdout)
        assert list(doc) == ["error"] and doc["error"], (args, r.stdout)
    r = mxb.run("mxroute", "-c", missing, "--json", "x.test")
    assert "missing.conf" in json.loads(r.stdout)["error"]


def test_gateway_literal_needs_no_dns(daemons):
    conf = ru.resolver_conf(daemons, ru.dead_port(), extra='    zones { "example.test"; };\n'
                            '    gateway "[198.51.100.250]";\n')
    rc, r = one(conf, "elsewhere.org")
    assert rc == 0
    assert r["hops"] == [{"preference": 0, "host": "[198.51.100.250]",
                          "source": "gateway", "addresses": ["198.51.100.250"]}]


def test_default_zone_is_hostname_parent(daemons, nsd):
    """With a gateway and no zones, the zone is the parent of relay.hostname
    (relay1.example.test -> example.test), as OpenVMS defaults /ZONE."""
    conf = ru.resolver_conf(daemons, nsd, extra='    gateway "[198.51.100.250]";\n')
    rc, res = ru.route(conf, "elsewhere.org", "order.example.test")
    assert rc == 0
    assert res[0]["hops"][0]["source"] == "gateway"
    assert res[1]["hops"][0]["source"] == "dns-mx"


def test_self_mx_and_worse_dropped(conf):
    rc, res = ru.route(conf, "selfmx.example.test", "selfaddr.example.test",
                       "selfonly.example.test")
    selfmx, selfaddr, selfonly = res
    assert ru.hosts_of(selfmx) == ["mx1.example.test"]       # by name (relay.hostname)
    assert ru.hosts_of(selfaddr) == ["mx1.example.test"]     # by address (127.0.0.1)
    assert (selfonly["status"], selfonly["dsn"]) == ("permanent", "5.4.6")
    assert "loops back to myself" in selfonly["reason"]
    assert rc == 1


def test_names_are_case_insensitive(conf):
    rc, res = ru.route(conf, "ORDER.Example.TEST.", "User@Order.EXAMPLE.test")
    assert rc == 0
    for r in res:
        assert r["domain"] == "order.example.test"
        assert ru.hosts_of(r) == ["mx1.example.test", "mx2.example.test",
                                  "mx3.example.test"]


def test_cname_at_the_domain_is_followed(conf):
    rc, r = one(conf, "domalias.example.test")
    assert rc == 0 and len(r["hops"]) == 3


def test_tcp_fallback_on_truncation(conf, nsd):
    # The answer really does not fit a 1232-octet UDP reply: NSD sets TC.
    q = dns.message.make_query("big.example.test", "MX", use_edns=0, payload=1232)
    udp = dns.query.udp(q, "127.0.0.1", port=nsd, timeout=2)
    assert udp.flags & dns.flags.TC
    rc, r = one(conf, "big.example.test", explain=True)
    assert rc == 0
    assert len(r["hops"]) == BIG_MX               # only TCP could carry them all
    assert any("retried over TCP" in s for s in r["steps"])


def test_explain_lists_steps(conf):
    r = ru.mxroute(conf, "--explain", "aonly.example.test")
    assert r.returncode == 0
    assert "local aliases: aonly.example.test is not a local-alias domain" in r.stdout
    assert "local MX database: no entry" in r.stdout
    assert "implicit MX" in r.stdout


def test_invalid_domain_and_usage(conf):
    rc, r = one(conf, "bad..example.test")
    assert rc == 1 and r["dsn"] == "5.1.3"
    assert ru.mxroute(conf).returncode == 64


def test_postmap_socketmap(daemons, conf):
    postmap = require_tool("postmap")
    port = mxb.free_port()
    daemons.start("mxroute-socketmap",
                  [mxb.binary("mxroute"), "-c", conf, "--socketmap", f"127.0.0.1:{port}"],
                  ready=mxb.tcp_open("127.0.0.1", port))
    pfdir = ru.write_postfix_dir(daemons)
    table = f"socketmap:inet:127.0.0.1:{port}:mxroute"

    def q(key):
        return subprocess.run([postmap, "-c", pfdir, "-q", key, table],
                              capture_output=True, text=True, timeout=30)

    r = q("order.example.test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ("smtp:[mx1.example.test]:25, [mx2.example.test]:25, "
                                "[mx3.example.test]:25")
    r = q("user@nullmx.example.test")
    assert r.stdout.startswith("error:5.1.10 ")
    r = q("nxhosts.example.test")
    assert r.stdout.strip() == "smtp:[198.51.100.77]:25"
    assert q("mail.example.test").stdout.strip() == "local:"
    assert q(".example.test").returncode == 1      # parent-domain keys: not found


def test_socketmap_reload_on_sighup(daemons, nsd):
    postmap = require_tool("postmap")
    conf = ru.resolver_conf(daemons, nsd)
    port = mxb.free_port()
    d = daemons.start("mxroute-socketmap",
                      [mxb.binary("mxroute"), "-c", conf, "--socketmap", f"127.0.0.1:{port}"],
                      ready=mxb.tcp_open("127.0.0.1", port))
    pfdir = ru.write_postfix_dir(daemons)
    table = f"socketmap:inet:127.0.0.1:{port}:mxroute"

    def q(key):
        return subprocess.run([postmap, "-c", pfdir, "-q", key, table],
                              capture_output=True, text=True, timeout=30).stdout.strip()

    assert q("elsewhere.example.test").startswith("error:5.1.2")
    # A broken file is refused and the running configuration kept.
    with open(conf, "a") as f:
        f.write("resolver { bogus-statement; };\n")
    d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: "reload failed" in d.log(), 10, "the refused reload")
    assert q("elsewhere.example.test").startswith("error:5.1.2")
    # A good one is swapped in: everything outside example.test now goes
    # to the literal gateway.
    ru.resolver_conf(daemons, nsd, extra='    zones { "order.example.test"; };\n'
                     '    gateway "[198.51.100.250]";\n')
    d.signal(signal.SIGHUP)
    mxb.wait_until(lambda: q("elsewhere.example.test") == "smtp:[198.51.100.250]:25",
                   10, "the new configuration")
    assert d.proc.poll() is None
