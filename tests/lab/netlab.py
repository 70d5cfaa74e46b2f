"""netlab - a small library for labs of hosts made of Linux network namespaces.

A Lab owns everything it creates (namespaces, links, mounts, processes) and
undoes all of it in cleanup(), which is idempotent and also runs on SIGINT,
SIGTERM and interpreter exit.  Hosts hang off one bridge that lives in a
dedicated "switch" namespace; the root namespace's interfaces and routes are
never touched.  Needs root and iproute2.

    lab = Lab("mxl123", "/tmp/mxl123")
    sw = lab.switch()
    a = lab.host("a", ["10.53.0.10/24"])
    with inside(a.ns):                 # sockets opened here live in a's namespace
        s = socket.create_connection(("10.53.0.11", 25))
    p = lab.start(a, "sleeper", ["sleep", "60"])
    wait_until(lambda: p.alive(), 5, "sleeper")

Link faults: Link.down()/up() (admin state of the host's interface) and
Link.impair(loss=%, delay=ms) on both directions.  Impairment uses the
kernel's netem qdisc when it exists; kernels built without sch_netem get
"wire" links instead, a pair of TAP devices joined by a thread of this
process that drops and delays frames itself (same knobs, same semantics).
"""
import atexit
import ctypes
import fcntl
import heapq
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000

_libc = ctypes.CDLL(None, use_errno=True)


_T0 = time.monotonic()


def log(msg):
    """One progress line on stdout, stamped with seconds since the lab began."""
    print(f"[{time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


def sh(*argv, check=True, timeout=30):
    """Run a command (no shell); returns stdout. Fails loudly with stderr."""
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def enter(ns):
    """Move the calling thread into network namespace ns for good (for a
    thread that lives there, such as a probe)."""
    fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


@contextmanager
def inside(ns):
    """Run a block in network namespace ns (the calling thread only); the
    sockets it opens stay in ns after the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(ns)
        yield
    finally:
        _setns(own)
        os.close(own)


def wait_until(probe, timeout, what, proc=None, period=0.05):
    """Poll probe() until it is true; returns the seconds it took.  Raises
    TimeoutError after timeout, RuntimeError when proc (a Proc) has died."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if probe():
            return time.monotonic() - start
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what}: {proc.name} exited ({proc.returncode()})\n"
                               f"--- {proc.name} log ---\n{proc.log()[-3000:]}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(period)


class Proc:
    """A program started in a host's namespace (`ip netns exec` execs in place,
    so the pid is the program's), with its output in a log file."""

    def __init__(self, host, name, argv, cwd, env=None):
        self.host = host
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(cwd, f"{name}.log")
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(["ip", "netns", "exec", host.ns, *argv],
                                          cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, env=env,
                                          start_new_session=True)
        self.expected_exit = False

    def alive(self):
        return self.popen.poll() is None

    def returncode(self):
        return self.popen.poll()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def signal(self, sig):
        if self.alive():
            self.popen.send_signal(sig)

    def kill(self):
        """SIGKILL, the fault: no chance to clean up."""
        self.expected_exit = True
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        self.expected_exit = True
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


class Link:
    """A host's port on the switch: `eth0` in the host, `p-<host>` on the bridge."""

    def __init__(self, lab, host):
        self.lab = lab
        self.host = host
        self.port = f"p-{host.name}"[:15]

    def down(self):
        sh("ip", "-n", self.host.ns, "link", "set", "eth0", "down")

    def up(self):
        sh("ip", "-n", self.host.ns, "link", "set", "eth0", "up")

    def impair(self, loss=0.0, delay_ms=0):
        raise NotImplementedError

    def clear(self):
        raise NotImplementedError

    def close(self):
        pass


class VethLink(Link):
    """A veth pair; impairment is a netem qdisc on both ends (each direction)."""

    def __init__(self, lab, host):
        super().__init__(lab, host)
        sh("ip", "-n", lab.switch_ns, "link", "add", self.port, "type", "veth",
           "peer", "name", "eth0", "netns", host.ns)
        self.impaired = False

    def _ends(self):
        return [(self.host.ns, "eth0"), (self.lab.switch_ns, self.port)]

    def impair(self, loss=0.0, delay_ms=0):
        spec = []
        if delay_ms:
            spec += ["delay", f"{delay_ms}ms"]
        if loss:
            spec += ["loss", f"{loss}%"]
        for ns, dev in self._ends():
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root",
               "netem", *spec)
        self.impaired = True

    def clear(self):
        if self.impaired:
            for ns, dev in self._ends():
                sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root",
                   check=False)
            self.impaired = False


class WireLink(Link):
    """Two TAP devices (`eth0` in the host, the port on the bridge) joined by a
    thread that forwards frames, dropping `loss` % and holding each frame
    `delay_ms`, independently in each direction: netem in user space.  The
    devices vanish with their file descriptors, so a crashed lab leaves none."""

    def __init__(self, lab, host):
        super().__init__(lab, host)
        self.host_fd = self._open_tap(host.ns, "eth0")
        self.port_fd = self._open_tap(lab.switch_ns, self.port)
        self.loss = 0.0
        self.delay = 0.0
        self.dropped = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, name=f"wire-{host.name}",
                                       daemon=True)
        self.thread.start()

    @staticmethod
    def _open_tap(ns, name):
        with inside(ns):  # a TAP device belongs to the namespace it was opened in
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
            fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
        return fd

    def impair(self, loss=0.0, delay_ms=0):
        self.loss = loss / 100.0
        self.delay = delay_ms / 1000.0

    def clear(self):
        self.impair(0.0, 0)

    def _read_all(self, fd, out, queue, seq):
        while True:
            try:
                frame = os.read(fd, 65536)
            except (BlockingIOError, OSError):
                return seq
            if self.loss and random.random() < self.loss:
                self.dropped += 1
                continue
            seq += 1
            heapq.heappush(queue, (time.monotonic() + self.delay, seq, out, frame))

    def _run(self):
        queue = []
        seq = 0
        pair = {self.host_fd: self.port_fd, self.port_fd: self.host_fd}
        while self.running:
            wait = 0.2 if not queue else max(0.0, min(0.2, queue[0][0] - time.monotonic()))
            try:
                ready, _, _ = select.select(list(pair), [], [], wait)
            except (OSError, ValueError):
                return
            for fd in ready:
                seq = self._read_all(fd, pair[fd], queue, seq)
            now = time.monotonic()
            while queue and queue[0][0] <= now:
                _, _, out, frame = heapq.heappop(queue)
                try:
                    os.write(out, frame)
                except OSError:  # interface down: the frame is lost, as on a wire
                    pass

    def close(self):
        self.running = False
        self.thread.join(2)
        for fd in (self.host_fd, self.port_fd):
            try:
                os.close(fd)
            except OSError:
                pass


class Host:
    """A namespace with one interface on the switch and its addresses."""

    def __init__(self, lab, name, ns, addrs):
        self.lab = lab
        self.name = name
        self.ns = ns
        self.addrs = addrs
        self.dir = os.path.join(lab.dir, name)
        self.link = None

    @property
    def addr(self):
        """The host's first address, without the prefix length."""
        return self.addrs[0].split("/")[0]


def netem_available():
    """True when the kernel has the netem qdisc (probed in a scratch namespace)."""
    ns = f"mxlprobe{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        r = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo",
                            "root", "netem", "delay", "1ms"], capture_output=True)
        return r.returncode == 0
    finally:
        sh("ip", "netns", "del", ns, check=False)


class Lab:
    """Everything one lab run made, and the one cleanup() that undoes it."""

    def __init__(self, prefix, directory, impairment="auto"):
        if os.geteuid() != 0:
            raise SystemExit("the lab needs root (network namespaces, mounts)")
        self.prefix = prefix
        self.dir = directory
        self.switch_ns = f"{prefix}-switch"
        self.hosts = {}
        self.procs = []
        self.links = []
        self.mounts = []
        self.namespaces = []
        self._cleaned = False
        if impairment == "auto":
            impairment = "netem" if netem_available() else "wire"
        self.impairment = impairment
        os.makedirs(directory, mode=0o755, exist_ok=True)
        os.chmod(directory, 0o755)
        atexit.register(self.cleanup)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        # Unwind through the callers' finally blocks; cleanup() runs there.
        raise KeyboardInterrupt(f"signal {signum}")

    def _netns_add(self, ns):
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")

    def switch(self):
        """The switch namespace with its bridge br0."""
        self._netns_add(self.switch_ns)
        sh("ip", "-n", self.switch_ns, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch_ns, "link", "set", "br0", "up")

    def host(self, name, addrs, impairable=False):
        """A host on the switch.  addrs: "10.53.0.11/24" ... (the first is the
        source the kernel prefers).  impairable: the link will take impair()
        (a wire link when the kernel has no netem)."""
        h = Host(self, name, f"{self.prefix}-{name}", addrs)
        os.makedirs(h.dir, mode=0o755, exist_ok=True)
        self._netns_add(h.ns)
        use_wire = impairable and self.impairment == "wire"
        h.link = WireLink(self, h) if use_wire else VethLink(self, h)
        self.links.append(h.link)
        for a in addrs:
            sh("ip", "-n", h.ns, "addr", "add", a, "dev", "eth0", *(
                ["nodad"] if ":" in a else []))
        sh("ip", "-n", self.switch_ns, "link", "set", h.link.port, "master", "br0")
        sh("ip", "-n", self.switch_ns, "link", "set", h.link.port, "up")
        sh("ip", "-n", h.ns, "link", "set", "eth0", "up")
        self.hosts[name] = h
        return h

    def start(self, host, name, argv, env=None):
        """Start argv in host's namespace; its log is <host dir>/<name>.log."""
        p = Proc(host, name, argv, host.dir, env)
        self.procs.append(p)
        return p

    def mount_tmpfs(self, path, size, uid=0, gid=0, mode=0o700):
        """A small tmpfs at path (a fresh file system for a disk-full fault)."""
        os.makedirs(path, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"size={size},uid={uid},gid={gid},mode={mode:o}",
           "tmpfs", path)
        self.mounts.append(path)

    def cleanup(self):
        """Stop every process, close the links, unmount, delete the namespaces
        (killing whatever still runs in them).  Safe to call twice."""
        if self._cleaned:
            return
        self._cleaned = True
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # finish cleaning up, whatever comes
        for p in reversed(self.procs):
            try:
                p.stop(timeout=5)
            except Exception as e:  # keep going: the rest must still go
                print(f"cleanup: {p.name}: {e}", file=sys.stderr)
        for link in self.links:
            link.close()
        for path in reversed(self.mounts):
            sh("umount", "-l", path, check=False)
        for ns in reversed(self.namespaces):
            for pid in sh("ip", "netns", "pids", ns, check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, check=False)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)

    def remove_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)
