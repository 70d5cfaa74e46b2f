"""-t checks what start-up needs (files, folders, the run user), warns about
values that are valid but likely wrong, -p prints the effective
configuration, and docs/configuration.md documents every statement with the
default and range of the grammar's one table."""
import base64
import os
import pwd
import random
import re
import shutil
import subprocess
import tempfile

import pytest

import mxb

DOC = os.path.join(mxb.TOP, "docs", "configuration.md")
ZONE = """$ORIGIN {name}.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 604800 60
@    NS ns1
ns1  A  127.0.0.1
"""
EXAMPLE_SECRET = "bWVyZ2UgbWUgaW50byBhIHJlYWwga2V5Cg=="
ROOT = os.geteuid() == 0


@pytest.fixture
def home():
    """A folder the run user may enter (pytest's own is root's, mode 0700)."""
    d = tempfile.mkdtemp(prefix="mxb-check-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def check(prog, conf_path, env=None, *args):
    return subprocess.run([mxb.binary(prog), "-t", *args, "-c", conf_path],
                          capture_output=True, text=True, timeout=30, env=env)


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def test_missing_zone_file_fails_check(home):
    conf = write(home, "b.conf", 'broker {\n    zone "a.test" {\n        file "a.zone";\n'
                                 '    };\n};\n')
    r = check("brokerd", conf)
    assert r.returncode == 1
    assert (f"brokerd: {conf}:2: zone 'a.test': file {home}/a.zone: "
            "No such file or directory") in r.stderr
    write(home, "a.zone", ZONE.format(name="a.test"))
    assert check("brokerd", conf).returncode == 0


@pytest.mark.parametrize("section,stmt,msg", [
    ("resolver", 'local-mx "nope.txt";', "resolver: local-mx {home}/nope.txt: No such file"),
    ("relay", 'local-aliases-file "nope";', "relay: local-aliases-file {home}/nope: No such file"),
    ("relay", 'queue-directory "/nonexistent/q/spool";',
     "relay: queue-directory /nonexistent/q/spool: folder /nonexistent/q: No such file"),
    ("relay", 'maildir-root "/nonexistent/m/mail";',
     "relay: maildir-root /nonexistent/m/mail: folder /nonexistent/m: No such file"),
    ("relay", 'control-socket "/nonexistent/c/s.sock";',
     "relay: control-socket /nonexistent/c/s.sock: folder /nonexistent/c: No such file"),
])
def test_relay_files_and_folders(home, section, stmt, msg):
    conf = write(home, "r.conf", f'{section} {{\n    {stmt}\n}};\nrelay {{ hostname "r.test"; }};\n'
                 if section == "resolver" else
                 f'{section} {{\n    {stmt}\n    hostname "r.test";\n}};\n')
    r = check("smtp-relayd", conf)
    assert r.returncode == 1
    assert f"smtp-relayd: {conf}:2: " + msg.format(home=home) in r.stderr


def test_user_must_exist(home):
    conf = write(home, "u.conf", 'options {\n    user "no-such-user-mxb";\n};\n')
    for prog in ("brokerd", "metricd", "smtp-relayd"):
        r = check(prog, conf)
        assert r.returncode == 1
        assert f"{prog}: {conf}:2: options: user 'no-such-user-mxb' does not exist" in r.stderr


@pytest.mark.skipif(not ROOT, reason="judging for another user needs root (make test runs as root)")
def test_judged_for_the_run_user(home):
    """As root, -t judges by the run user's ids and the modes, not by root's."""
    zone = write(home, "a.zone", ZONE.format(name="a.test"))
    os.chmod(zone, 0o600)
    locked = os.path.join(home, "locked")
    os.mkdir(locked, 0o755)
    conf = write(home, "n.conf", 'options {\n    user "nobody";\n    pid-file "locked/p.pid";\n};\n'
                                 'broker {\n    state-file "/tmp/mxb-x.state";\n'
                                 '    zone "a.test" { file "a.zone"; };\n};\n'
                                 'metrics {\n    drain-file "locked/drain";\n};\n')
    r = check("brokerd", conf)
    assert r.returncode == 1
    assert "user nobody cannot read it (mode 0600" in r.stderr
    assert f"{conf}:3: options: pid-file {locked}/p.pid: folder {locked}: user nobody" in r.stderr
    r = check("metricd", conf)
    assert r.returncode == 1
    assert f"{conf}:10: metrics: drain-file {locked}/drain: folder {locked}: user nobody" in r.stderr
    nobody = pwd.getpwnam("nobody")
    os.chown(zone, nobody.pw_uid, nobody.pw_gid)
    os.chown(locked, nobody.pw_uid, nobody.pw_gid)
    r = check("brokerd", conf)
    assert r.returncode == 0, r.stderr
    assert check("metricd", conf).returncode == 0


@pytest.mark.skipif(not ROOT, reason="the root refusal needs root (make test runs as root)")
@pytest.mark.parametrize("prog,section", [("brokerd", "broker"), ("metricd", "metrics"),
                                          ("smtp-relayd", "relay")])
def test_root_without_user(home, prog, section):
    port = mxb.free_port()
    host = ' hostname "r.test";' if section == "relay" else ""
    conf = write(home, "root.conf", f'{section} {{ listen 127.0.0.1 port {port};{host} }};\n')
    env = {k: v for k, v in os.environ.items() if k != "MXB_ALLOW_ROOT"}
    r = check(prog, conf, env)
    assert r.returncode == 1
    refusal = ('refusing to run as root: set options { user "NAME"; } (e.g. user '
               '"mxbroker";) so privileges are dropped after binding, or start the daemon '
               'as that user')
    assert f"{prog}: {refusal}" in r.stderr
    start = subprocess.run([mxb.binary(prog), "-c", conf], capture_output=True, text=True,
                           timeout=30, env=env, cwd=home)
    assert start.returncode == 1
    assert refusal in start.stderr
    assert check(prog, conf).returncode == 0     # MXB_ALLOW_ROOT=1 (conftest)


WARNINGS = [
    ("brokerd", 'cluster "c.a.test" {\n  dns-ttl 10;\n  dns-refresh 60;\n'
                '  masters { 127.0.0.1; };\n  members { 10.0.0.1; };\n};\n',
     ":1: warning: cluster 'c.a.test': dns-refresh (60s) is longer than dns-ttl (10s)"),
    ("brokerd", 'cluster "c.b.test" {\n  members { 10.0.0.1; };\n};\n',
     ":1: warning: cluster 'c.b.test' is in no zone this broker serves and has no masters"),
    ("smtp-relayd", 'relay {\n  hostname "r.test";\n  trusted-networks { 10.0.0.0/8; any; };\n};\n',
     ":3: warning: relay: trusted-networks contains 0.0.0.0/0: anyone may relay"),
    ("metricd", f'key "k" {{ algorithm hmac-sha256; secret "{EXAMPLE_SECRET}"; }};\n'
                'metrics {\n  key "k";\n};\n',
     ":3: warning: metrics: key 'k' has the secret of the reference example"),
    ("brokerd", f'key "k" {{ algorithm hmac-sha256; secret "{EXAMPLE_SECRET}"; }};\n'
                'cluster "c.d.test" {\n  masters { 127.0.0.1; };\n  key "k";\n'
                '  members { 10.0.0.1; };\n};\n',
     ":2: warning: cluster 'c.d.test': key 'k' has the secret of the reference example"),
]


@pytest.mark.parametrize("case", range(len(WARNINGS)))
def test_warnings_never_fail(home, case):
    prog, text, msg = WARNINGS[case]
    conf = write(home, "w.conf", text)
    r = check(prog, conf)
    assert r.returncode == 0, r.stderr
    assert f"{prog}: {conf}{msg}" in r.stderr
    assert r.stdout.strip() == f"{conf}: configuration OK"


def test_no_warning_for_a_sound_file(home):
    write(home, "a.zone", ZONE.format(name="a.test"))
    conf = write(home, "ok.conf", 'broker { zone "a.test" { file "a.zone"; }; };\n'
                                  'cluster "smtp.a.test" { members { 10.0.0.1; }; };\n')
    r = check("brokerd", conf)
    assert r.returncode == 0 and r.stderr == "", r.stderr


# ---- -p -------------------------------------------------------------------

def dur(s):
    m = re.fullmatch(r"(\d+)([smhdw]?)", s)
    return int(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400,
                              "w": 604800}[m.group(2)]


def size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def parse(text):
    """named.conf-style text into [(words, children or None)]."""
    toks = re.findall(r'"(?:[^"\\]|\\.)*"|[{};]|[^\s{};"]+', text)
    pos = 0

    def block():
        nonlocal pos
        out = []
        while pos < len(toks) and toks[pos] != "}":
            words, kids = [], None
            while toks[pos] not in (";", "{"):
                words.append(toks[pos].strip('"'))
                pos += 1
            if toks[pos] == "{":
                pos += 1
                kids = block()
                pos += 1    # }
            pos += 1        # ;
            out.append((words, kids))
        return out
    return block()


def lookup(tree, path):
    """The statement at path (each step: a name or (name, label))."""
    for step in path:
        name, label = step if isinstance(step, tuple) else (step, None)
        hits = [s for s in tree if s[0][0] == name and (label is None or s[0][1] == label)]
        assert hits, f"{path}: {step} not printed"
        words, kids = hits[0]
        tree = kids
    return words, kids


def gen_config(rnd, home):
    """A configuration with at least 3 of every repeatable statement and list entry,
    and for each given value: (path, kind, value)."""
    facts = []
    keys = [f"k{i}.test" for i in range(3)]
    secrets = {k: base64.b64encode(rnd.randbytes(32)).decode() for k in keys}
    out = ['options {\n    directory "%s";\n    log-level %s;\n    syslog %s;\n};\n'
           % (home, rnd.choice(["error", "warning", "info", "debug"]), rnd.choice(["yes", "no"]))]
    for k in keys:
        out.append('key "%s" { algorithm hmac-sha256; secret "%s"; };\n' % (k, secrets[k]))
        facts.append(((("key", k), "secret"), "word", secrets[k]))
    zones = [f"z{i}.test" for i in range(3)]
    z_text = []
    for z in zones:
        write(home, f"{z}.zone", ZONE.format(name=z))
        nets = [f"10.{rnd.randrange(256)}.{i}.0/24" for i in range(3)]
        notify = [f"127.0.0.{i + 1} port {rnd.randrange(1024, 65535)}" for i in range(3)]
        z_text.append('    zone "%s" {\n        file "%s.zone";\n        allow-transfer { %s };\n'
                      '        also-notify { %s };\n    };\n'
                      % (z, z, "".join(n + "; " for n in nets), "".join(n + "; " for n in notify)))
        facts += [(("broker", ("zone", z), "file"), "word", f"{home}/{z}.zone"),
                  (("broker", ("zone", z), "allow-transfer"), "list", nets),
                  (("broker", ("zone", z), "also-notify"), "list", notify)]
    threads, idle = rnd.randrange(1, 65), rnd.randrange(1, 3601)
    out.append("broker {\n    listen { 127.0.0.1 port 5353; ::1 port 5354; 127.0.0.2 port 53; };\n"
               "    threads %d;\n    tcp-idle-timeout %d;\n    rate-limit { slip %d; };\n%s};\n"
               % (threads, idle, rnd.randrange(0, 11), "".join(z_text)))
    facts += [(("broker", "threads"), "int", threads), (("broker", "tcp-idle-timeout"), "dur", idle),
              (("broker", "listen"), "list",
               ["127.0.0.1 port 5353", "::1 port 5354", "127.0.0.2 port 53"])]
    for c in range(3):
        name = f"c{c}.{zones[c]}"
        ttl, refresh = rnd.randrange(60, 600), rnd.randrange(1, 60)
        members = [f"10.1.{c}.{i + 1} weight {rnd.randrange(1, 1001)}" for i in range(3)]
        masters = [f"192.0.2.{i + 1} port 53" for i in range(3)]
        out.append('cluster "%s" {\n    dns-ttl %d;\n    dns-refresh %d;\n    masters { %s };\n'
                   '    members { %s };\n    failover 10.9.%d.1;\n    failover 2001:db8::%d;\n'
                   '    key "%s";\n    policy weighted;\n    health-check tcp %d;\n};\n'
                   % (name, ttl, refresh, "".join(m + "; " for m in masters),
                      "".join(m + "; " for m in members), c, c + 1, keys[c], 2525 + c))
        facts += [((("cluster", name), "dns-ttl"), "int", ttl),
                  ((("cluster", name), "dns-refresh"), "dur", refresh),
                  ((("cluster", name), "members"), "list", members),
                  ((("cluster", name), "masters"), "list", masters),
                  ((("cluster", name), "key"), "word", keys[c]),
                  ((("cluster", name), "health-check"), "words", ["tcp", str(2525 + c)])]
    cap, goal = rnd.randrange(1, 1000000), rnd.randrange(0, 1 << 30)
    out.append('metrics {\n    listen { 127.0.0.1 port 4331; 127.0.0.2 port 4331; ::1 port 4331; };\n'
               '    capacity %d;\n    memory-goal %d;\n    key "%s";\n};\n' % (cap, goal, keys[0]))
    facts += [(("metrics", "capacity"), "int", cap), (("metrics", "memory-goal"), "size", goal)]
    doms = [f"d{i}.test" for i in range(3)]
    nets = [f"10.{i}.0.0/16" for i in range(3)]
    users = [f"u{i}" for i in range(3)]
    retry, mms = rnd.randrange(60, 3600), rnd.randrange(1024, 1 << 32)
    write(home, "aliases", "x.test\n")
    write(home, "mx.txt", "")
    out.append('resolver {\n    nameservers { 127.0.0.1; 127.0.0.2; 127.0.0.3; };\n'
               '    zones { %s };\n    local-mx "mx.txt";\n};\n' % "".join(d + "; " for d in doms))
    out.append('relay {\n    hostname "r.test";\n    local-aliases { %s };\n'
               '    local-aliases-file "aliases";\n    relay-domains { %s };\n'
               '    trusted-networks { %s };\n    users { %s };\n    retry-interval %d;\n'
               '    max-message-size %d;\n};\n'
               % ("".join(d + "; " for d in doms), "".join(d + "; " for d in doms),
                  "".join(n + "; " for n in nets), "".join('"%s"; ' % u for u in users),
                  retry, mms))
    facts += [(("resolver", "zones"), "list", doms), (("relay", "relay-domains"), "list", doms),
              (("relay", "trusted-networks"), "list", nets), (("relay", "users"), "list", users),
              (("relay", "retry-interval"), "dur", retry),
              (("relay", "max-message-size"), "size", mms),
              (("relay", "local-aliases-file"), "word", f"{home}/aliases"),
              (("resolver", "local-mx"), "word", f"{home}/mx.txt")]
    return "".join(out), facts


def value_of(tree, path, kind):
    words, kids = lookup(tree, path)
    if kind == "list":
        return [" ".join(w) for w, _ in kids]
    if kind == "words":
        return words[1:]
    return {"int": int, "dur": dur, "size": size, "word": str}[kind](words[1])


PARTS = {"brokerd": ("broker", "cluster", "key"), "metricd": ("metrics", "key"),
         "smtp-relayd": ("relay", "resolver", "key")}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("prog", ["brokerd", "metricd", "smtp-relayd"])
def test_print_is_the_effective_configuration(home, prog, seed):
    rnd = random.Random(seed)
    text, facts = gen_config(rnd, home)
    conf = write(home, "gen.conf", text)
    r = check(prog, conf, None, "-p", "--show-secrets")
    assert r.returncode == 0, r.stderr
    printed = r.stdout
    assert "configuration OK" not in printed
    again = write(home, "printed.conf", printed)
    r2 = check(prog, again, None, "-p", "--show-secrets")
    assert r2.returncode == 0, r2.stderr
    assert r2.stdout == printed
    tree = parse(printed)
    for path, kind, want in facts:
        top = path[0][0] if isinstance(path[0], tuple) else path[0]
        if top not in PARTS[prog]:
            continue
        assert value_of(tree, path, kind) == want, path
    # Defaults are filled in, paths absolute, secrets hidden without the flag.
    hidden = check(prog, conf, None, "-p").stdout
    assert 'secret "<hidden>";' in hidden and EXAMPLE_SECRET not in hidden
    assert not any(s in hidden for _, k, s in facts if k == "word" and len(s) == 44)
    if prog == "brokerd":
        assert lookup(tree, ("broker", "state-file"))[0][1] == f"{home}/brokerd.state"
        assert lookup(tree, (("cluster", "c0.z0.test"), "max-members"))[0][1] == "3"
    if prog == "smtp-relayd":
        assert lookup(tree, ("relay", "queue-directory"))[0][1] == f"{home}/spool"
        assert dur(lookup(tree, ("relay", "queue-lifetime"))[0][1]) == 5 * 86400


# ---- the documentation against the grammar's one table -------------------

def doc_value(text, kind):
    if kind == "duration":
        return dur(text.rstrip("s") + "s" if text.endswith("s") else text)
    if kind == "size":
        return size(text)
    return int(text)


def doc_tables():
    """{(block, statement): (default cell, range cell)} from docs/configuration.md."""
    rows, block = {}, None
    for line in open(DOC):
        m = re.match(r"#{2,3} ([a-z-]+)", line)
        if m:
            block = m.group(1)
        m = re.match(r"\| `([a-z0-9-]+)[ ;`]", line)
        if m and block:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            rows[(block, m.group(1))] = (cells[1], cells[2])
    return rows


def test_docs_match_the_grammar():
    r = mxb.run("brokerd", "--dump-grammar")
    assert r.returncode == 0
    grammar = [line.split("\t") for line in r.stdout.splitlines()]
    assert len(grammar) > 80
    docs = doc_tables()
    names = {(b, n) for b, n, *_ in grammar}
    assert not set(docs) - names, f"documented but not in the grammar: {set(docs) - names}"
    for block, name, kind, default, rng, _ in grammar:
        assert (block, name) in docs, f"{block} {{ {name} }} is not documented"
        doc_default, doc_range = docs[(block, name)]
        if default != "-" and not default.startswith("(") and kind in (
                "number", "duration", "size", "port"):
            m = re.match(r"`([^`]+)`", doc_default)
            assert m, f"{name}: default {default} not documented ({doc_default})"
            assert doc_value(m.group(1), kind) == doc_value(default, kind), name
        elif default != "-" and not default.startswith("("):
            assert default.split()[0] in doc_default, f"{name}: default {default}: {doc_default}"
        if rng != "-":
            m = re.search(r"`([^`.]+)\.\.([^`.]+)`", doc_range)
            assert m, f"{block} {{ {name} }}: range {rng} not documented ({doc_range})"
            lo, hi = rng.split("..")
            assert (doc_value(m.group(1), kind), doc_value(m.group(2), kind)) == \
                (doc_value(lo, kind), doc_value(hi, kind)), name
