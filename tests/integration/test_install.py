"""Install and run (issue 14): `make install` into a DESTDIR, the installed
systemd units (systemd-analyze verify, ExecReload that checks first, a real
run under systemd-run where PID 1 is systemd), sd_notify readiness from each
daemon (a test socket stands in for systemd), and the OpenVMS
TCPIP$LBROKER.CONF loaded unchanged from the main file the operator guide
shows."""
import filecmp
import os
import pwd
import re
import shlex
import signal
import socket
import struct
import subprocess
import time
import uuid

import dns.message
import dns.query
import pytest

import metrics_util
import mxb
from conftest import require_tool

BUILD = os.path.dirname(os.path.abspath(mxb.BIN))
DAEMONS = ("brokerd", "metricd", "smtp-relayd")
EXAMPLES = os.path.join(mxb.TOP, "docs", "examples")
OPENVMS = "TCPIP$LBROKER.CONF"
GUIDE = os.path.join(mxb.TOP, "docs", "operator-guide.md")
# The hardening the units carried before Type=notify; none of it may go.
HARDENING = (
    "User=mxbroker", "Group=mxbroker", "AmbientCapabilities=CAP_NET_BIND_SERVICE",
    "CapabilityBoundingSet=CAP_NET_BIND_SERVICE", "NoNewPrivileges=yes",
    "StateDirectory=mxbroker", "StateDirectoryMode=0700", "ConfigurationDirectory=mxbroker",
    "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
    "ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectKernelLogs=yes",
    "ProtectControlGroups=yes", "ProtectClock=yes", "ProtectHostname=yes",
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=yes",
    "RestrictRealtime=yes", "RestrictSUIDSGID=yes", "LockPersonality=yes",
    "MemoryDenyWriteExecute=yes", "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service", "UMask=0077")


def make_args():
    """make's arguments for the build the tests run (MXB_BIN's parent), as it
    is.  $(BUILD)/flags holds the command lines that build was made with;
    given as FLAGS_LINE, make sees no change of flags.  Without it, `make
    install` of an ASan build (make check-asan-integration) rewrote the flags
    file with the default ones and rebuilt every program without ASan, under
    the feet of the tests running them."""
    args = ["make", "-C", mxb.TOP, "--no-print-directory", f"BUILD={BUILD}"]
    try:
        with open(os.path.join(BUILD, "flags")) as f:
            args.append("FLAGS_LINE=" + f.read().removesuffix("\n"))
    except FileNotFoundError:
        pass
    return args


def make_install(prefix, destdir=""):
    """`make install PREFIX=prefix DESTDIR=destdir` from the top folder, using
    the build the tests run, which must be up to date: it is installed, never
    rebuilt (with other flags, while other tests run its programs)."""
    r = subprocess.run(make_args() + ["-q", "all"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, \
        f"{BUILD} is not up to date (make -q all: {r.returncode}): build it first\n{r.stderr}"
    r = subprocess.run(make_args() + ["install", f"PREFIX={prefix}", f"DESTDIR={destdir}"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"make install failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def tree(top):
    """Every file and folder under top, relative to it."""
    out = set()
    for d, dirs, files in os.walk(top):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


def unit_lines(path, key):
    with open(path) as f:
        return [line.split("=", 1)[1].strip() for line in f if line.startswith(key + "=")]


def programs():
    return sorted(n for n in os.listdir(mxb.BIN) if os.access(mxb.binary(n), os.X_OK))


# --- make install ---------------------------------------------------------

def test_install_tree(tmp_path):
    root = str(tmp_path / "root")
    make_install("/usr/local", root)
    pre = os.path.join(root, "usr/local")
    assert set(os.listdir(root)) == {"usr"}, "installed outside PREFIX"

    for p in programs():
        where = "sbin" if p.endswith("d") else "bin"
        path = os.path.join(pre, where, p)
        assert os.access(path, os.X_OK), f"{p} not installed in {where}"
        assert filecmp.cmp(path, mxb.binary(p), shallow=False), p
    for d in DAEMONS:
        assert os.access(os.path.join(pre, "sbin", d), os.X_OK), d

    for m in os.listdir(os.path.join(mxb.TOP, "docs/man")):
        sec = m.rsplit(".", 1)[-1]
        if sec.isdigit():
            page = os.path.join(pre, f"share/man/man{sec}", m)
            assert os.path.isfile(page), m
            # Every file a page points at is installed too.
            text = open(page).read()
            assert "docs/" not in text, f"{m} points into the source tree"
            for ref in re.findall(r"(/[\w./-]*share/doc/mxbroker/[\w./$-]*\w)", text):
                local = os.path.join(root, ref.lstrip("/"))
                assert os.path.exists(local), f"{m} points at {ref}, not installed"
    assert os.path.isfile(os.path.join(pre, "share/doc/mxbroker/brokering.md"))

    ex = os.path.join(pre, "share/doc/mxbroker/examples")
    assert tree(ex) == tree(EXAMPLES), "the examples tree differs from docs/examples"
    assert os.path.isdir(os.path.join(ex, "demo"))
    for rel in tree(EXAMPLES):
        if os.path.isfile(os.path.join(EXAMPLES, rel)):
            assert filecmp.cmp(os.path.join(ex, rel), os.path.join(EXAMPLES, rel),
                               shallow=False), rel

    units = os.path.join(pre, "lib/systemd/system")
    assert sorted(os.listdir(units)) == sorted(f"{d}.service" for d in DAEMONS)
    for d in DAEMONS:
        text = open(os.path.join(units, f"{d}.service")).read()
        assert "@" not in text.replace("@system-service", ""), f"{d}: placeholder left"
        for key in ("ExecStartPre", "ExecStart", "ExecReload"):
            for cmd in unit_lines(os.path.join(units, f"{d}.service"), key):
                exe = shlex.split(cmd)[0]
                assert exe in (f"/usr/local/sbin/{d}", "/bin/kill"), f"{d}: {key}={cmd}"
                assert os.access(root + exe if exe.startswith("/usr/local") else exe,
                                 os.X_OK), exe
    sysusers = os.path.join(pre, "lib/sysusers.d/mxbroker.conf")
    assert re.search(r"^u mxbroker ", open(sysusers).read(), re.M)


def test_install_honours_prefix_and_destdir(tmp_path):
    root = str(tmp_path / "pkg")
    make_install("/opt/mxb", root)
    assert set(os.listdir(root)) == {"opt"}
    assert set(os.listdir(os.path.join(root, "opt"))) == {"mxb"}
    for d in DAEMONS:
        unit = os.path.join(root, "opt/mxb/lib/systemd/system", f"{d}.service")
        assert unit_lines(unit, "ExecStart") == [f"/opt/mxb/sbin/{d} -c /etc/mxbroker/mxbroker.conf"]


# --- the systemd units ------------------------------------------------------

def test_units_notify_and_checked_reload(tmp_path):
    root = str(tmp_path / "root")
    make_install("/usr", root)
    for d in DAEMONS:
        unit = os.path.join(root, "usr/lib/systemd/system", f"{d}.service")
        text = open(unit).read()
        assert unit_lines(unit, "Type") == ["notify"], d
        assert unit_lines(unit, "NotifyAccess") == ["main"], d
        assert unit_lines(unit, "ExecReload") == [
            f"/usr/sbin/{d} -t -c /etc/mxbroker/mxbroker.conf", "/bin/kill -HUP $MAINPID"], d
        for line in HARDENING:
            assert re.search("^" + re.escape(line) + "$", text, re.M), f"{d}: lost {line}"


def analyze_verify(units, env):
    return subprocess.run([require_tool("systemd-analyze"), "verify", *units],
                          capture_output=True, text=True, timeout=120, env=env)


def test_units_pass_systemd_analyze_verify(tmp_path):
    # Installed for real under a private prefix, so the programs the units
    # name exist and verify can check them (it does not look into DESTDIR).
    prefix = str(tmp_path / "usr")
    make_install(prefix)
    env = dict(os.environ, MANPATH=os.path.join(prefix, "share/man"))
    probe = tmp_path / "mxb-probe.service"
    probe.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    r = analyze_verify([str(probe)], env)
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        pytest.skip("systemd-analyze verify cannot run in this container (it fails on a "
                    f"trivial unit): {r.stdout}{r.stderr}".strip())
    units = [os.path.join(prefix, "lib/systemd/system", f"{d}.service") for d in DAEMONS]
    r = analyze_verify(units, env)
    # verify exits 0 on most mistakes and only says so: any output is a failure.
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), \
        f"systemd-analyze verify:\n{r.stdout}{r.stderr}"


def broker_conf(dirpath, port, http, zone):
    return (f'options {{ directory "{dirpath}"; }};\n'
            f"broker {{ listen {{ 127.0.0.1 port {port}; }};\n"
            f"  status-listen 127.0.0.1 port {http};\n"
            f'  zone "mail.example.test" {{ file "{zone}"; }}; }};\n')


ZONE = """$ORIGIN mail.example.test.
$TTL 300
@    IN SOA ns1 hostmaster 2024010101 3600 900 604800 60
@    NS ns1
ns1  A 192.0.2.1
"""


def run_exec_reload(unit, conf, pid):
    """Run the unit's ExecReload= commands as systemd does: in order, the
    first one that fails fails the reload and the rest are not run."""
    for cmd in unit_lines(unit, "ExecReload"):
        argv = [a.replace("/etc/mxbroker/mxbroker.conf", conf).replace("$MAINPID", str(pid))
                for a in shlex.split(cmd)]
        if subprocess.run(argv, capture_output=True, timeout=30).returncode != 0:
            return False
    return True


def test_exec_reload_refuses_a_bad_configuration(daemons, tmp_path):
    prefix = str(tmp_path / "usr")
    make_install(prefix)
    unit = os.path.join(prefix, "lib/systemd/system/brokerd.service")
    port, http = mxb.free_port(), mxb.free_port()
    zone = daemons.write("z.zone", ZONE)
    good = broker_conf(daemons.dir, port, http, zone)
    conf = daemons.write("brokerd.conf", good)
    d = daemons.start("brokerd", [mxb.binary("brokerd"), "-c", conf],
                      ready=mxb.http_ok("127.0.0.1", http))
    reloads = lambda: mxb.http_json("127.0.0.1", http)["reloads"]  # noqa: E731

    daemons.write("brokerd.conf", good + "broker { bogus-statement 1; };\n")
    assert not run_exec_reload(unit, conf, d.pid), "a bad configuration reloaded"
    assert d.proc.poll() is None
    assert reloads() == 0, "the daemon was signalled although -t failed"

    daemons.write("brokerd.conf", good)
    assert run_exec_reload(unit, conf, d.pid)
    mxb.wait_until(lambda: reloads() == 1, what="the reload")
    assert d.stop() == 0


def pid1_is_systemd():
    try:
        return os.readlink("/proc/1/exe").endswith("/systemd") and \
            os.path.isdir("/run/systemd/system")
    except OSError:
        return False


@pytest.mark.skipif(not pid1_is_systemd(),
                    reason="PID 1 is not systemd here: no real run under systemd-run "
                           "(the NOTIFY_SOCKET tests below stand in for it)")
def test_real_run_under_systemd(daemons, tmp_path):
    port, http = mxb.free_port(), mxb.free_port()
    zone = daemons.write("z.zone", ZONE)
    good = broker_conf(daemons.dir, port, http, zone)
    conf = daemons.write("brokerd.conf", good)
    os.chmod(daemons.dir, 0o755)
    unit = f"mxb-test-{uuid.uuid4().hex[:8]}"
    brokerd = mxb.binary("brokerd")
    r = subprocess.run([require_tool("systemd-run"), f"--unit={unit}", "--collect",
                        "-p", "Type=notify", "-p", "NotifyAccess=main",
                        "-p", f"ExecReload={brokerd} -t -c {conf}",
                        "-p", "ExecReload=/bin/kill -HUP $MAINPID",
                        "--setenv=MXB_ALLOW_ROOT=1", brokerd, "-c", conf],
                       capture_output=True, text=True, timeout=60)
    try:
        # systemd-run returns once the start job is done: for Type=notify,
        # after READY=1, so the broker must answer now, without a retry.
        assert r.returncode == 0, r.stderr
        q = dns.message.make_query("mail.example.test.", "SOA")
        assert dns.query.udp(q, "127.0.0.1", port=port, timeout=2).answer
        daemons.write("brokerd.conf", good + "broker { bogus-statement 1; };\n")
        assert subprocess.run(["systemctl", "reload", unit]).returncode != 0
        daemons.write("brokerd.conf", good)
        assert subprocess.run(["systemctl", "reload", unit]).returncode == 0
        assert mxb.http_json("127.0.0.1", http)["reloads"] == 1
    finally:
        subprocess.run(["systemctl", "stop", unit], timeout=60)


# --- sd_notify readiness (needs the sdnotify_* calls in the mains) ----------

class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket (abstract name,
    or a path) that records each message and the pid of its sender."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if path is None:
            name = f"mxb-test-notify-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.env_value = "@" + name
        else:
            self.sock.bind(path)
            self.env_value = path
        self.messages = []  # (sender pid, {key: value})

    def env(self):
        return dict(os.environ, NOTIFY_SOCKET=self.env_value)

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        creds = struct.calcsize("3i")
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(creds))
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", payload[:creds])[0]
        fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
        self.messages.append((pid, fields))
        return pid, fields

    def wait_for(self, key, proc, timeout=20.0):
        """The next message carrying key=...; fails if proc exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Datagrams queued before an exit are still read: poll after.
            try:
                pid, fields = self._recv(0.2)
            except socket.timeout:
                if proc.poll() is not None:
                    raise AssertionError(f"daemon exited ({proc.returncode}) before {key}; "
                                         f"got {self.messages}") from None
                continue
            if key in fields:
                return pid, fields
        raise AssertionError(f"no {key} within {timeout}s; got {self.messages}")

    def close(self):
        self.sock.close()


def start_brokerd(daemons, env):
    port, http = mxb.free_port(), mxb.free_port()
    zone = daemons.write("z.zone", ZONE)
    conf = daemons.write("brokerd.conf", broker_conf(daemons.dir, port, http, zone))

    def answers(timeout=2.0):
        q = dns.message.make_query("mail.example.test.", "SOA")
        return bool(dns.query.udp(q, "127.0.0.1", port=port, timeout=timeout).answer)
    d = daemons.start("brokerd", [mxb.binary("brokerd"), "-c", conf], env=env)
    return d, conf, answers


def start_metricd(daemons, env):
    port, http = mxb.free_port(), mxb.free_port()
    conf = daemons.write("metricd.conf", f'options {{ directory "{daemons.dir}"; }};\n' +
                         metrics_util.agent_conf("127.0.0.1", port, http))

    def answers(timeout=2.0):
        nonce = metrics_util.nonce()
        req = metrics_util.request(1, nonce, metrics_util.SECRET)
        data = metrics_util.udp_ask("127.0.0.1", port, req, timeout=timeout)
        return data is not None and metrics_util.parse_reply(
            data, 1, nonce, metrics_util.SECRET) is not None
    d = daemons.start("metricd", [mxb.binary("metricd"), "-c", conf], env=env)
    return d, conf, answers


def start_relayd(daemons, env):
    port, dnsport = mxb.free_port(), mxb.free_port()
    conf = daemons.write("smtp-relayd.conf",
                         f'options {{ directory "{daemons.dir}"; }};\n'
                         f"resolver {{ nameservers {{ 127.0.0.1 port {dnsport}; }}; }};\n"
                         f"relay {{ listen {{ 127.0.0.1 port {port}; }};\n"
                         f'  hostname "relay.test"; relay-domains {{ "example.test"; }};\n'
                         f"  hold-delivery yes; }};\n")

    def answers(timeout=2.0):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(512).startswith(b"220")
    d = daemons.start("smtp-relayd", [mxb.binary("smtp-relayd"), "-c", conf], env=env)
    return d, conf, answers


# How soon a daemon that said READY=1 must answer on loopback.
READY_ANSWER_S = 0.5
STARTERS = {"brokerd": start_brokerd, "metricd": start_metricd, "smtp-relayd": start_relayd}


@pytest.mark.parametrize("prog", DAEMONS)
def test_ready_only_once_answering(daemons, prog):
    ns = NotifySocket()
    try:
        d, conf, answers = STARTERS[prog](daemons, ns.env())
        pid, ready = ns.wait_for("READY", d.proc)
        # Readiness is a promise: the first try must succeed at once (a
        # query queued on a bound socket until the daemon gets round to it
        # does not count), no polling.
        assert answers(READY_ANSWER_S), f"{prog} said READY=1 before it answers"
        assert ready["READY"] == "1" and ready.get("MAINPID") == str(d.pid), ready
        assert pid == d.pid, "READY=1 must come from the main process (NotifyAccess=main)"

        d.signal(signal.SIGHUP)
        _, reloading = ns.wait_for("RELOADING", d.proc)
        assert reloading["RELOADING"] == "1" and reloading["MONOTONIC_USEC"].isdigit()
        ns.wait_for("READY", d.proc)
        assert answers()

        # A reload that fails still ends the reloading state, and the old
        # configuration keeps serving.
        with open(conf, "a") as f:
            f.write("bogus-top-level-statement;\n")
        d.signal(signal.SIGHUP)
        ns.wait_for("RELOADING", d.proc)
        ns.wait_for("READY", d.proc)
        assert answers()

        d.signal(signal.SIGTERM)
        ns.wait_for("STOPPING", d.proc, timeout=10)
        assert d.stop() == 0
    finally:
        ns.close()


def test_ready_on_a_path_socket(daemons, tmp_path):
    ns = NotifySocket(str(tmp_path / "notify"))
    try:
        d, _, answers = start_brokerd(daemons, ns.env())
        ns.wait_for("READY", d.proc)
        assert answers()
    finally:
        ns.close()


def test_unreachable_notify_socket_is_not_fatal(daemons, tmp_path):
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "nobody-listens"))
    d, _, answers = start_brokerd(daemons, env)
    mxb.wait_until(lambda: "sdnotify:" in d.log(), what="the sdnotify warning", proc=d.proc)
    assert answers()
    assert d.log().count("sdnotify:") == 1, "a dead notify socket is reported once"
    assert d.stop() == 0


# --- the OpenVMS file, included from a main file -----------------------------

root_only = pytest.mark.skipif(os.geteuid() != 0,
                               reason="the privilege drop needs root (CI runs as root)")


def guide_main_file():
    """The main file the operator guide gives for TCPIP$LBROKER.CONF."""
    text = open(GUIDE).read()
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        if f'include "/etc/mxbroker/{OPENVMS}";' in block:
            return block
    raise AssertionError(f"docs/operator-guide.md shows no main file including {OPENVMS}")


def openvms_setup(tmp_path, state_owner):
    """/etc/mxbroker and /var/lib/mxbroker of the guide, under tmp_path, run
    as nobody; the OpenVMS file copied byte for byte."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir(mode=0o700)
    os.chown(state, state_owner, -1)
    os.chmod(tmp_path, 0o755)
    with open(os.path.join(EXAMPLES, OPENVMS), "rb") as f:
        original = f.read()
    (etc / OPENVMS).write_bytes(original)
    main = (guide_main_file().replace("/etc/mxbroker", str(etc))
            .replace("/var/lib/mxbroker", str(state)).replace('"mxbroker"', '"nobody"'))
    assert '"nobody"' in main, "the guide's main file sets no options { user }"
    conf = etc / "mxbroker.conf"
    conf.write_text(main)
    return str(conf), str(state)


def strict_env():
    env = dict(os.environ)
    env.pop("MXB_ALLOW_ROOT", None)
    return env


@root_only
def test_openvms_file_loads_from_the_guides_main_file(daemons, tmp_path):
    nobody = pwd.getpwnam("nobody")
    conf, state = openvms_setup(tmp_path, nobody.pw_uid)
    r = subprocess.run([mxb.binary("brokerd"), "-t", "-c", conf], capture_output=True,
                       text=True, env=strict_env(), timeout=30)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout + r.stderr

    d = daemons.start("brokerd", [mxb.binary("brokerd"), "-c", conf], env=strict_env())
    mxb.wait_until(lambda: "started" in d.log(), what="brokerd to start", proc=d.proc)
    with open(f"/proc/{d.pid}/status") as f:
        uid = next(line.split()[1:] for line in f if line.startswith("Uid:"))
    assert uid == [str(nobody.pw_uid)] * 4
    for cluster in ("smtp.mail.example.com", "www.example.com"):
        assert f"cluster {cluster}:" in d.log()
    assert d.stop() == 0


@root_only
def test_openvms_state_file_lives_in_options_directory(tmp_path):
    # A state folder nobody cannot write: -t names where the state file goes.
    conf, state = openvms_setup(tmp_path, 0)
    r = subprocess.run([mxb.binary("brokerd"), "-t", "-c", conf], capture_output=True,
                       text=True, env=strict_env(), timeout=30)
    assert r.returncode != 0
    assert os.path.join(state, "brokerd.state") in r.stderr, r.stderr


def test_openvms_file_is_unchanged_reference():
    # The guide's instructions rely on the file as shipped: clusters only.
    text = open(os.path.join(EXAMPLES, OPENVMS)).read()
    assert "options" not in text and "include" not in text
