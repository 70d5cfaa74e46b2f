"""mxb - the integration-test fixture library.

Start real daemons (ours and peers such as NSD, Knot or smtp-sink) on
127.0.0.0/8 with a free port and a temporary directory, wait until they
answer (never a fixed sleep), and always stop them.

    def test_x(daemons, tmp_path):
        port = mxb.free_port()
        d = daemons.mxbroker("brokerd", f'broker {{ listen 127.0.0.1 port {port}; }};',
                             ready=mxb.udp_bound("127.0.0.1", port))
"""
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import threading
import time
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("MXB_BIN", os.path.join(TOP, "build", "bin"))


def binary(name):
    """Path of one of our programs in build/bin."""
    return os.path.join(BIN, name)


_sanitized = {}


def sanitized(prog="smtp-relayd"):
    """True when prog is built with AddressSanitizer (make
    check-asan-integration): its memory use is then ASan's as much as ours."""
    if prog not in _sanitized:
        with open(binary(prog), "rb") as f:
            _sanitized[prog] = b"__asan_init" in f.read()
    return _sanitized[prog]


def run(prog, *args, timeout=30, input=None):
    """Run one of our programs to completion; returns CompletedProcess (text)."""
    return subprocess.run([binary(prog), *args], capture_output=True, text=True,
                          timeout=timeout, input=input)


_used_ports = set()


def _port_free(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(family, kind)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def _port_range():
    """The ports this process may hand out: 10000-32000 (below the kernel's
    ephemeral range), or under pytest-xdist (-n N) worker gwK's own slice of
    it, so that two workers never pick the same port between the free check
    and the daemon's bind."""
    low, high = 10000, 32000
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if worker.startswith("gw") and worker[2:].isdigit() and count > 1:
        k = int(worker[2:])
        size = (high - low + 1) // count
        low += k * size
        high = low + size - 1
    return low, high


def free_port(host="127.0.0.1"):
    """A port free for both TCP and UDP on host, outside the ephemeral range,
    never handed out twice in one test run, nor by two xdist workers."""
    low, high = _port_range()
    for _ in range(1000):
        port = random.randint(low, high)
        if port not in _used_ports and _port_free(host, port):
            _used_ports.add(port)
            return port
    raise RuntimeError("no free port found on " + host)


# Readiness probes: each returns a callable that is true once the service answers.

def tcp_open(host, port):
    def probe():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return probe


def _proc_net_ports(path, state):
    try:
        with open(path) as f:
            lines = f.readlines()[1:]
    except OSError:
        return set()
    found = set()
    for line in lines:
        fields = line.split()
        local, st = fields[1], fields[3]
        if state is None or st == state:
            found.add(int(local.rsplit(":", 1)[1], 16))
    return found


def udp_bound(host, port):
    """True once some socket is bound to UDP port (any address of the family)."""
    path = "/proc/net/udp6" if ":" in host else "/proc/net/udp"
    return lambda: port in _proc_net_ports(path, None)


def http_ok(host, port, path="/status"):
    url = f"http://{host}:{port}{path}"

    def probe():
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False
    return probe


def http_get(host, port, path):
    """GET a path; returns (status, content-type, body text)."""
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def http_json(host, port, path="/status"):
    status, _, body = http_get(host, port, path)
    assert status == 200, f"GET {path}: HTTP {status}: {body}"
    return json.loads(body)


def wait_until(probe, timeout=10.0, what="condition", proc=None):
    """Poll probe() until true; fail early if proc exits.  Bounded."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if probe():
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


class Daemon:
    """One started process with its log file; stop() is idempotent."""

    def __init__(self, name, argv, cwd, env=None):
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.log_path = os.path.join(cwd, f"{name}.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        self.returncode = None
        self._term_sent = False

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def wait_ready(self, probe, timeout=10.0):
        try:
            wait_until(probe, timeout, f"{self.name} to be ready", self.proc)
        except (RuntimeError, TimeoutError) as e:
            self.stop()
            raise RuntimeError(f"{e}\n--- {self.name} log ---\n{self.log()}") from None

    def signal(self, sig):
        if sig == signal.SIGTERM:
            self._term_sent = True
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            # A second SIGTERM during shutdown would kill the daemon after
            # its loop has given up the signal: send it once.
            if not self._term_sent:
                self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        self._log.close()
        return self.returncode


class Daemons:
    """Starts daemons for one test and stops every one of them at the end."""

    def __init__(self, tmp_path):
        self.dir = str(tmp_path)
        self.started = []

    def start(self, name, argv, ready=None, timeout=10.0, cwd=None, env=None):
        d = Daemon(name, argv, cwd or self.dir, env)
        self.started.append(d)
        if ready is not None:
            d.wait_ready(ready, timeout)
        return d

    def write(self, name, text):
        """Write a file into the test directory; returns its path."""
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def mxbroker(self, prog, config_text, ready=None, args=(), name=None,
                 timeout=10.0):
        """Write config_text to <prog>.conf (with options { directory } set to
        the test directory unless given) and start build/bin/<prog> -c it."""
        if "options" not in config_text:
            config_text = f'options {{ directory "{self.dir}"; }};\n' + config_text
        conf = self.write(f"{name or prog}.conf", config_text)
        return self.start(name or prog, [binary(prog), "-c", conf, *args],
                          ready=ready, timeout=timeout)

    def stop_all(self):
        errors = []
        for d in reversed(self.started):
            try:
                d.stop()
            except Exception as e:  # keep stopping the others
                errors.append(f"{d.name}: {e}")
        if errors:
            raise RuntimeError("; ".join(errors))



class _Serving:
    """What both responders share: a daemon thread running self._run while
    self.running, and close() (also stop()) that ends it and closes
    self.socks."""

    def _start(self):
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def close(self):
        self.running = False
        self.thread.join(5)
        for s in self.socks:
            s.close()

    stop = close


class UdpResponder(_Serving):
    """Fake UDP peers: one socket on (host, port) for each host (port 0: the
    kernel picks one, see .port), served by one thread that hands every
    datagram to handle(sock, data, peer) until close().  The handler answers
    with sock.sendto(reply, peer), or not at all; sock.getsockname() tells
    which host was asked.  .requests counts the datagrams received."""

    def __init__(self, hosts, port, handle, bufsize=4096):
        if isinstance(hosts, str):
            hosts = [hosts]
        self.handle = handle
        self.bufsize = bufsize
        self.requests = 0
        self.sel = selectors.DefaultSelector()
        self.socks = []
        for h in hosts:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((h, port))
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
        self.sock = self.socks[0]
        self.port = self.sock.getsockname()[1]
        self._start()

    def _run(self):
        while self.running:
            for k, _ in self.sel.select(0.1):
                try:
                    data, peer = k.fileobj.recvfrom(self.bufsize)
                except OSError:
                    continue
                self.requests += 1
                self.handle(k.fileobj, data, peer)


class TcpResponder(_Serving):
    """A fake TCP peer on (host, port) (port 0: see .port): one thread
    accepts connections and hands each to handle(conn), which owns it (and
    starts a thread of its own if the conversation is long), until close()."""

    def __init__(self, host, port, handle, backlog=16):
        self.handle = handle
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.1)
        self.socks = [self.sock]
        self.port = self.sock.getsockname()[1]
        self._start()

    def _run(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.handle(conn)
