"""The privilege model (docs/hardening.md): a daemon started as root binds,
then runs as options { user }; without `user` it refuses to start as root
(unless MXB_ALLOW_ROOT=1, the escape hatch the test fixture uses); the
files it creates are its own (umask 077)."""
import os
import pwd
import subprocess

import pytest

import mxb
from conftest import require_tool

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="privilege drop needs root (CI runs as root)")

NOBODY = pwd.getpwnam("nobody")


def strict_env():
    """The environment without the test fixture's MXB_ALLOW_ROOT."""
    env = dict(os.environ)
    env.pop("MXB_ALLOW_ROOT", None)
    return env


def proc_status(pid):
    """Uid, Gid, Groups and Umask lines of /proc/PID/status as lists of ints."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(v) for v in value.split()]
            elif key == "Umask":
                out[key] = int(value.strip(), 8)
    return out


def metricd_conf(daemons, port, http, options):
    return daemons.write("metricd.conf",
                         f'options {{ directory "{daemons.dir}"; {options} }};\n'
                         f"metrics {{ listen 127.0.0.1 port {port}; "
                         f"http-listen 127.0.0.1 port {http}; compute-interval 1; }};\n")


def relay_conf(daemons, port, http, options):
    # Nameservers that refuse: delivery defers, the message stays queued.
    dns = mxb.free_port()
    return daemons.write("smtp-relayd.conf",
                         f'options {{ directory "{daemons.dir}"; {options} }};\n'
                         f"resolver {{ nameservers {{ 127.0.0.1 port {dns}; }}; "
                         f"timeout 1s; attempts 1; }};\n"
                         f"relay {{ listen {{ 127.0.0.1 port {port}; }};\n"
                         f'  hostname "relay.test"; relay-domains {{ "example.test"; }};\n'
                         f"  status-listen 127.0.0.1 port {http}; }};\n")


def start(daemons, prog, conf, http, env):
    return daemons.start(prog, [mxb.binary(prog), "-c", conf], env=env,
                         ready=mxb.http_ok("127.0.0.1", http))


def assert_runs_as_nobody(pid):
    st = proc_status(pid)
    assert st["Uid"] == [NOBODY.pw_uid] * 4, st       # real, effective, saved, fs
    assert st["Gid"] == [NOBODY.pw_gid] * 4, st
    assert st["Groups"] == [NOBODY.pw_gid], st        # root's groups are gone
    assert st["Umask"] == 0o077, st


def test_metricd_drops_to_user(daemons):
    port, http = mxb.free_port(), mxb.free_port()
    conf = metricd_conf(daemons, port, http, 'user "nobody";')
    d = start(daemons, "metricd", conf, http, strict_env())
    assert_runs_as_nobody(d.pid)
    assert mxb.http_json("127.0.0.1", http)["program"] == "metricd"
    assert "running as user nobody" in d.log()
    assert d.stop() == 0


def test_smtp_relayd_drops_to_user_and_queues(daemons):
    swaks = require_tool("swaks")
    port, http = mxb.free_port(), mxb.free_port()
    conf = relay_conf(daemons, port, http, 'user "nobody";')
    d = start(daemons, "smtp-relayd", conf, http, strict_env())
    assert_runs_as_nobody(d.pid)
    r = subprocess.run([swaks, "--server", f"127.0.0.1:{port}", "--timeout", "10",
                        "--from", "a@client.test", "--to", "b@example.test"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "queued as" in r.stdout, r.stdout + r.stderr
    qid = r.stdout.split("queued as ")[1].split()[0]
    path = os.path.join(daemons.dir, "spool", "queue", qid)
    st = os.stat(path)
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o600)
    spool = os.stat(os.path.join(daemons.dir, "spool"))
    assert (spool.st_uid, spool.st_mode & 0o777) == (NOBODY.pw_uid, 0o700)
    assert mxb.http_json("127.0.0.1", http)["counters"]["messages_queued"] == 1
    assert d.stop() == 0


@pytest.mark.parametrize("prog", ["metricd", "smtp-relayd"])
def test_refuses_root_without_user(daemons, prog):
    port, http = mxb.free_port(), mxb.free_port()
    make = metricd_conf if prog == "metricd" else relay_conf
    conf = make(daemons, port, http, "")
    r = subprocess.run([mxb.binary(prog), "-c", conf], env=strict_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "refusing to run as root" in r.stderr and 'user "' in r.stderr, r.stderr


def test_refuses_uid0_user(daemons):
    port, http = mxb.free_port(), mxb.free_port()
    conf = metricd_conf(daemons, port, http, 'user "root";')
    r = subprocess.run([mxb.binary("metricd"), "-c", conf], env=strict_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "uid 0" in r.stderr, r.stderr


def test_unknown_user_is_an_error(daemons):
    port, http = mxb.free_port(), mxb.free_port()
    conf = metricd_conf(daemons, port, http, 'user "no-such-user-mxb";')
    r = subprocess.run([mxb.binary("metricd"), "-c", conf], env=strict_env(),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "does not exist" in r.stderr, r.stderr


def test_allow_root_escape_hatch(daemons):
    """MXB_ALLOW_ROOT=1 (what the test fixture sets) keeps root, loudly."""
    port, http = mxb.free_port(), mxb.free_port()
    conf = metricd_conf(daemons, port, http, "")
    env = strict_env()
    env["MXB_ALLOW_ROOT"] = "1"
    d = start(daemons, "metricd", conf, http, env)
    assert proc_status(d.pid)["Uid"] == [0, 0, 0, 0]
    assert "MXB_ALLOW_ROOT=1" in d.log()
    assert d.stop() == 0
