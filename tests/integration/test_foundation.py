"""Foundation: every program's command line, `-t` on good and bad
configurations, and the status endpoint every daemon serves."""
import os
import pwd
import subprocess
import shutil
import tempfile

import pytest

import mxb

PROGRAMS = ["brokerd", "metricd", "smtp-relayd", "mxroute", "metricview",
            "smtp-relayctl"]
DAEMONS = ["brokerd", "metricd", "smtp-relayd"]
EXAMPLES = os.path.join(mxb.TOP, "docs", "examples")


@pytest.mark.parametrize("prog", PROGRAMS)
def test_help_and_version(prog):
    r = mxb.run(prog, "--help")
    assert r.returncode == 0
    assert r.stdout.startswith(f"usage: {prog}")
    r = mxb.run(prog, "--version")
    assert r.returncode == 0
    assert r.stdout.strip().startswith(f"{prog} (mxbroker) ")


@pytest.mark.parametrize("prog", PROGRAMS)
def test_bad_option_is_usage_error(prog):
    r = mxb.run(prog, "--no-such-option")
    assert r.returncode == 64
    assert "usage:" in r.stderr


ZONE = """$ORIGIN mail.example.test.
$TTL 300
@    IN SOA ns1 hostmaster 2024010101 3600 900 604800 60
@    NS ns1
ns1  A  127.0.0.1
"""


def example_home(text):
    """The reference file's folder (/var/lib/mxbroker) as `make install`
    would make it: a folder the run user owns, holding the files the example
    names.  As root the run user is `nobody` (it must exist and -t judges by
    it); otherwise the user running the test."""
    home = tempfile.mkdtemp(prefix="mxb-example-", dir="/tmp")
    os.chmod(home, 0o755)
    if os.geteuid() == 0:
        user = "nobody"
        os.chown(home, pwd.getpwnam(user).pw_uid, -1)
    else:
        user = pwd.getpwuid(os.getuid()).pw_name
    with open(os.path.join(home, "mail.example.test.zone"), "w") as f:
        f.write(ZONE)
    with open(os.path.join(home, "local-mx.txt"), "w") as f:
        f.write("# domain preference gateway\n")
    text = text.replace("/var/lib/mxbroker", home)
    return home, text.replace('user "mxbroker";', f'user "{user}";')


@pytest.mark.parametrize("prog", DAEMONS)
@pytest.mark.parametrize("example", ["mxbroker.conf", "TCPIP$LBROKER.CONF"])
def test_check_accepts_examples(prog, example):
    path = os.path.join(EXAMPLES, example)
    text = open(path).read()
    home = None
    try:
        if "/var/lib/mxbroker" in text:
            home, text = example_home(text)
            path = os.path.join(home, example)
            with open(path, "w") as f:
                f.write(text)
        r = mxb.run(prog, "-t", "-c", path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == f"{path}: configuration OK"
        if home is None or os.geteuid() != 0:
            return
        # The same file in a broken home fails -t, as it would fail to start.
        os.unlink(os.path.join(home, "mail.example.test.zone"))
        os.unlink(os.path.join(home, "local-mx.txt"))
        os.chmod(home, 0o700)
        os.chown(home, 0, -1)
        r = mxb.run(prog, "-t", "-c", path)
        assert r.returncode == 1, r.stderr
        assert "configuration OK" not in r.stdout
    finally:
        if home is not None:
            shutil.rmtree(home)


BAD = {
    "missing-semicolon": ("broker {\n    threads 2\n    status-listen 127.0.0.1;\n};\n",
                          ":2: missing ';' after '2'"),
    "unknown-statement": ('cluster "a.test" {\n    members { 10.0.0.1; };\n'
                          '    max-memebers 3;\n};\n',
                          ":3: unknown statement 'max-memebers' in cluster"),
    "bad-address": ('cluster "a.test" {\n    members {\n        10.0.0.1;\n'
                    '        10.0.0.999;\n    };\n};\n',
                    ":4: '10.0.0.999' is not an IPv4 or IPv6 address"),
    "out-of-range": ("metrics {\n    compute-interval 500;\n};\n",
                     ":2: 'compute-interval' 500 is out of range (1..300)"),
    "missing-semicolon-before-block": ("broker {\n    threads 2\n    rate-limit { slip 1; };\n};\n",
                                       ":2: missing ';' after '2'"),
}


@pytest.mark.parametrize("prog", DAEMONS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_check_points_at_the_culprit(prog, case, tmp_path):
    text, message = BAD[case]
    path = tmp_path / f"{case}.conf"
    path.write_text(text)
    r = mxb.run(prog, "-t", "-c", str(path))
    assert r.returncode == 1
    assert r.stderr.strip() == f"{prog}: {path}{message}"
    assert r.stdout == ""


def test_missing_config_file(tmp_path):
    r = mxb.run("brokerd", "-t", "-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert r.stderr.strip() == f"brokerd: {tmp_path}/nope.conf: cannot read: No such file or directory"


def test_messages_name_real_paths(tmp_path):
    (tmp_path / "inc.conf").write_text("metrics {\n    capacity 0;\n};\n")
    (tmp_path / "main.conf").write_text('include "./inc.conf";\n')
    r = subprocess.run([mxb.binary("metricd"), "-t", "-c", "./main.conf"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.strip() == "metricd: inc.conf:2: 'capacity' 0 is out of range (1..1000000)"


@pytest.mark.parametrize("prog,section", [("brokerd", "broker"),
                                          ("metricd", "metrics"),
                                          ("smtp-relayd", "relay")])
def test_status_endpoint(daemons, prog, section):
    port = mxb.free_port()
    key = {"broker": "status-listen", "metrics": "http-listen",
           "relay": "status-listen"}[section]
    listen = "listen { 127.0.0.1 port %d; };" % mxb.free_port()
    if section == "relay":
        listen += ' hostname "relay.test";'
    d = daemons.mxbroker(prog, f"{section} {{ {listen} {key} 127.0.0.1 port {port}; }};",
                         ready=mxb.http_ok("127.0.0.1", port))
    status = mxb.http_json("127.0.0.1", port, "/status")
    assert status["program"] == prog
    assert status["pid"] == d.pid
    assert status["uptime_seconds"] >= 0
    code, ctype, body = mxb.http_get("127.0.0.1", port, "/metrics")
    assert code == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    assert "# TYPE mxbroker_build_info gauge" in body
    assert f'mxbroker_build_info{{program="{prog}",' in body
    code, _, _ = mxb.http_get("127.0.0.1", port, "/nowhere")
    assert code == 404
    assert d.stop() == 0     # SIGTERM, once
    assert "shutting down" in d.log()


def test_status_port_in_use_is_an_error(daemons):
    port = mxb.free_port()
    daemons.mxbroker("brokerd", f"broker {{ status-listen 127.0.0.1 port {port}; }};",
                     ready=mxb.http_ok("127.0.0.1", port), name="first")
    d = daemons.mxbroker("brokerd", f"broker {{ status-listen 127.0.0.1 port {port}; }};",
                         name="second")
    assert d.proc.wait(10) == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in d.log()
