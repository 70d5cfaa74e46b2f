"""demo: tests/tools/demo.sh (`make demo`) runs the whole appliance on
loopback, relays user@example.test through the cluster's first answer to the
demo's final destination (a fourth smtp-relayd delivering into a Maildir),
keeps its logs and Maildirs when it stops, and leaves no process behind, also
when it is interrupted twice.

The demo uses its documented fixed addresses (127.0.0.1:5353, 127.0.0.11-14
port 2525, ...): a port already taken there is a loud failure."""
import glob
import os
import re
import signal
import subprocess
import time

import pytest

import mxb
from conftest import require_tool

# Serial (docs/testing.md): the demo's fixed ports (127.0.0.1:5353, 127.0.0.11-14
# port 2525, ...) and its bound on the second Ctrl-C.
pytestmark = pytest.mark.serial

DEMO = os.path.join(mxb.TOP, "tests", "tools", "demo.sh")
DAEMONS = 8     # brokerd, 3 x (metricd, smtp-relayd), the destination's smtp-relayd


def demo_env():
    env = dict(os.environ, MXB_BIN=mxb.BIN)
    env.pop("BUILD", None)
    return env


def terminal_signals():
    """In the child: SIGINT and SIGQUIT as a terminal's shell leaves them.
    A suite started in the background (`make test &`, nohup) inherits them
    ignored, and a shell cannot trap a signal ignored on entry, so the
    demo would never see the Ctrl-C this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def started_pids(out):
    return [int(p) for p in re.findall(r"^demo: started .* \(pid (\d+), log ", out, re.M)]


def is_running(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def assert_all_stopped(pids):
    deadline = time.monotonic() + 5
    while any(is_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [p for p in pids if is_running(p)] == []


def delivered(d):
    return glob.glob(os.path.join(d, "destination", "mail", "user", "new", "*"))


def assert_logs_kept(d, out):
    logs = sorted(glob.glob(os.path.join(d, "*", "*.log")))
    assert len(logs) == DAEMONS, logs
    assert f"logs and Maildirs are kept in {d}" in out
    for log in logs:
        assert log in out, f"{log} not named in the demo's output"


def test_demo_once_relays_end_to_end(tmp_path):
    require_tool("swaks")
    require_tool("dig")
    d = str(tmp_path / "demo")
    r = subprocess.run([DEMO, "--once", "--dir", d], capture_output=True, text=True,
                       timeout=120, env=demo_env())
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    pids = started_pids(out)
    assert len(pids) == DAEMONS, out
    assert_all_stopped(pids)

    # The message went to the cluster's first answer and landed at the
    # destination, and the output says where.
    msgs = delivered(d)
    assert len(msgs) == 1, out
    assert msgs[0] in out
    first = re.search(r"== swaks to the first answer, (127\.0\.0\.1[123]):2525", out).group(1)
    with open(msgs[0]) as f:
        text = f.read()
    assert "Subject: mxbroker demo" in text
    relay = {"127.0.0.11": "relay1", "127.0.0.12": "relay2", "127.0.0.13": "relay3"}[first]
    assert f"from {relay}.mail.example.test" in text and "by mx.example.test" in text
    assert "result=delivered" in out

    # Logs survive the stop; each daemon had its own pid file, removed at a
    # clean exit.
    assert_logs_kept(d, out)
    for conf in glob.glob(os.path.join(d, "*", "*.conf")):
        with open(conf) as f:
            m = re.search(r'pid-file "([^"]+)"', f.read())
        assert m, conf
        assert os.path.basename(conf)[:-len(".conf")] + ".pid" == m.group(1)
        assert not os.path.exists(os.path.join(os.path.dirname(conf), m.group(1)))


def wait_output(path, text, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            out = f.read()
        if text in out:
            return out
        time.sleep(0.2)
    raise AssertionError(f"demo did not print {text!r}:\n{out}")


def test_demo_ctrl_c_twice_stops_everything_and_keeps_logs(tmp_path):
    """Interactive mode: Ctrl-C (SIGINT to the whole process group, as a
    terminal sends it) while one daemon is stuck (SIGSTOP: SIGTERM cannot
    end it); the demo waits for it, and a second Ctrl-C ends it at once."""
    require_tool("swaks")
    d = str(tmp_path / "demo")
    log = str(tmp_path / "demo.out")
    with open(log, "w") as f:
        p = subprocess.Popen([DEMO, "--dir", d], stdout=f, stderr=subprocess.STDOUT,
                             env=demo_env(), start_new_session=True,
                             preexec_fn=terminal_signals)
    try:
        out = wait_output(log, "Press Ctrl-C")
        pids = started_pids(out)
        assert len(pids) == DAEMONS, out
        pidfiles = sorted(glob.glob(os.path.join(d, "*", "*.pid")))
        assert len(pidfiles) == DAEMONS, pidfiles     # one per daemon
        assert sorted(int(open(x).read()) for x in pidfiles) == sorted(pids)
        os.kill(pids[-1], signal.SIGSTOP)
        os.killpg(p.pid, signal.SIGINT)
        time.sleep(1)
        assert p.poll() is None, "the demo exited with a daemon still running"
        t0 = time.monotonic()
        os.killpg(p.pid, signal.SIGINT)
        assert p.wait(timeout=30) != 0
        assert time.monotonic() - t0 < 5, "the second Ctrl-C did not stop the demo at once"
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    with open(log) as f:
        out = f.read()
    assert_all_stopped(pids)
    assert_logs_kept(d, out)
    assert len(delivered(d)) == 1
