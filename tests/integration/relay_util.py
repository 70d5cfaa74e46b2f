"""relay_util - helpers for the smtp-relayd integration tests: start the
relay with a test configuration, talk raw SMTP, run smtp-relayctl."""
import json
import os
import re
import signal
import socket
import subprocess

import mxb


class Relay:
    """A running smtp-relayd with its ports, directory and configuration."""

    def __init__(self, daemons, extra="", host="127.0.0.1", name="smtp-relayd", options=""):
        self.host = host
        self.options = options  # more options { } statements, e.g. 'user "nobody";'
        self.port = mxb.free_port()
        self.status_port = mxb.free_port()
        self.dir = daemons.dir
        self.spool = os.path.join(self.dir, "spool")
        self.extra = extra
        self.name = name
        self.conf = os.path.join(self.dir, f"{name}.conf")
        self.daemons = daemons
        self.d = None
        self.start()

    def config_text(self):
        return (f'options {{ directory "{self.dir}"; {self.options} }};\n'
                f'relay {{\n'
                f'    listen {{ {self.host} port {self.port}; }};\n'
                f'    hostname "relay.test";\n'
                f'    local-aliases {{ "mail.example.test"; }};\n'
                f'    relay-domains {{ "example.test"; }};\n'
                f'    trusted-networks {{ 127.0.0.1/32; }};\n'
                f'    status-listen 127.0.0.1 port {self.status_port};\n'
                f'    {self.extra}\n'
                # These tests look at the queue: nothing leaves it unless asked.
                + ('' if 'hold-delivery' in self.extra else '    hold-delivery yes;\n')
                + ('' if 'max-sessions-per-client' in self.extra
                   else '    max-sessions-per-client 50;\n') +
                '};\n')

    def start(self):
        self.d = self.daemons.mxbroker("smtp-relayd", self.config_text(), name=self.name,
                                       ready=mxb.http_ok("127.0.0.1", self.status_port))
        return self.d

    def status(self):
        return mxb.http_json("127.0.0.1", self.status_port, "/status")

    def ctl(self, *args, check=True, timeout=30):
        """Run smtp-relayctl -c <conf> args; returns CompletedProcess."""
        r = mxb.run("smtp-relayctl", "-c", self.conf, *args, timeout=timeout)
        if check:
            assert r.returncode == 0, f"smtp-relayctl {args}: {r.returncode}: {r.stderr}"
        return r

    def ctl_json(self, *args, timeout=30):
        return json.loads(self.ctl(*args, "--json", timeout=timeout).stdout)

    def wait_attempted(self, qid, n=1, rcpt=None, timeout=20):
        """Recipient rcpt (the first when None) of message qid, once its
        queue file records attempt n and the recipient is still pending.
        The delivery log line is written when the outcome is known, the
        queue file a moment later (as in Postfix): what `smtp-relayctl show`
        says must be awaited after the log line, not assumed."""
        def recipient():
            rcpts = self.ctl_json("show", qid)["recipients"]
            return next(r for r in rcpts if rcpt is None or r["address"] == rcpt)

        def attempted():
            r = recipient()
            return r["attempts"] >= n and r["state"] == "pending"
        mxb.wait_until(attempted, timeout, f"attempt {n} of {qid} in the queue file",
                       proc=self.d.proc)
        return recipient()

    def queue_ids(self):
        return sorted(m["id"] for m in self.ctl_json("list")["messages"])

    def queue_files(self, sub="queue"):
        """The files in one spool folder, less the relay's own in tmp/: its
        writability probe (tmp/probe, written and removed every few seconds)
        and the spare files of removed messages (tmp/spare.N)."""
        return sorted(f for f in os.listdir(os.path.join(self.spool, sub))
                      if not (sub == "tmp" and (f == "probe" or f.startswith("spare."))))

    def spare_files(self):
        return sorted(f for f in os.listdir(os.path.join(self.spool, "tmp"))
                      if f.startswith("spare."))

    def connect(self, source=None, timeout=10):
        return SmtpConn(self.host, self.port, source, timeout)


class SmtpConn:
    """A raw SMTP connection: send bytes exactly, read replies."""

    def __init__(self, host, port, source=None, timeout=10):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((host, port))
        self.buf = b""
        self.banner = self.reply()

    def close(self):
        self.sock.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; pending: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        """One (possibly multi-line) reply: (code, full text)."""
        lines = [self._line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self._line())
        return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self):
        """True when the server has closed the connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def transaction(self, sender, rcpts, body):
        """MAIL, RCPT..., DATA, body (bytes, sent as is), returns the final reply."""
        assert self.cmd(f"MAIL FROM:<{sender}>")[0] == 250
        for r in rcpts:
            assert self.cmd(f"RCPT TO:<{r}>")[0] == 250
        assert self.cmd("DATA")[0] == 354
        self.send(body)
        return self.reply()


POSTFIX_MASTER_CF = """\
{listen} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix  - - n 1000? 1 tlsmgr
"""


class PrivatePostfix:
    """A Postfix instance of its own (config, queue and data directories in a
    fresh folder outside the test's 0700 tmp dir, so that the postfix user
    can enter them), listening on 127.0.0.1:port and relaying everything to
    relayhost.  Started in the foreground under `daemons`; stop() ends it."""

    def __init__(self, daemons, relayhost, port=None, extra="", host="127.0.0.1"):
        import shutil
        import subprocess
        import tempfile
        from conftest import require_tool
        self._shutil = shutil
        self._subprocess = subprocess
        self.postfix = require_tool("postfix")
        self.port = port or mxb.free_port()
        self.top = tempfile.mkdtemp(prefix="mxb-postfix-")
        os.chmod(self.top, 0o755)
        self.etc = os.path.join(self.top, "etc")
        spool = os.path.join(self.top, "spool")
        data = os.path.join(self.top, "data")
        for d in (self.etc, spool, data):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = pf.test
mydomain = pf.test
myorigin = pf.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = {relayhost}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
local_transport = error:no local delivery
smtpd_relay_restrictions = permit_mynetworks, reject
smtputf8_enable = no
maillog_file = /dev/stdout
biff = no
{extra}
""")
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(POSTFIX_MASTER_CF.format(listen=f"{host}:{self.port}"))
        r = subprocess.run([self.postfix, "-c", self.etc, "check"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, f"postfix check: {r.stdout}{r.stderr}"
        self.d = daemons.start("postfix", [self.postfix, "-c", self.etc, "start-fg"],
                               ready=mxb.tcp_open(host, self.port), timeout=30)

    def log(self):
        """Postfix's log (maillog_file = /dev/stdout: the daemon's log file)."""
        return self.d.log()

    def stop(self):
        self._subprocess.run([self.postfix, "-c", self.etc, "stop"], capture_output=True,
                             timeout=60)
        try:
            self.d.proc.wait(20)
        finally:
            self.d.stop()
            self._shutil.rmtree(self.top, ignore_errors=True)


QUEUED = re.compile(r"<<< 250 2\.0\.0 Ok: queued as ([0-9a-f]{16})")


def queued_ids(path):
    """The queue IDs an smtp-source -v log shows acknowledged."""
    with open(path, errors="replace") as f:
        return QUEUED.findall(f.read())


def smtp_source_round(relay, source, n, log_path, kill_after, rcpt="rcpt@example.test"):
    """Send n messages with smtp-source (10 sessions); SIGKILL the relay once
    kill_after of them got a 250 (None: let the round finish), then stop it.
    Returns the queue IDs acknowledged."""
    with open(log_path, "w") as log:
        p = subprocess.Popen([source, "-v", "-s", "10", "-m", str(n), "-l", "512",
                              "-f", "sender@client.test", "-t", rcpt,
                              f"{relay.host}:{relay.port}"],
                             stdout=subprocess.DEVNULL, stderr=log)
        try:
            if kill_after is not None:
                mxb.wait_until(lambda: len(queued_ids(log_path)) >= kill_after
                               or p.poll() is not None, 60, "messages before the kill")
                os.kill(relay.d.pid, signal.SIGKILL)
                relay.d.proc.wait(10)
            p.wait(120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
    relay.d.stop()
    return queued_ids(log_path)
