"""The mxbroker fault lab: build the appliance in network namespaces, inject
one fault at a time, measure how long brokerd, Knot and NSD take to show it,
and print the matrix.  See docs/testing.md, "Fault lab".

    tests/lab/run.sh [-k PATTERN]... [--keep] [--list]

Each fault is one function below; it returns the rows it adds to the matrix.
A time is measured with time.monotonic() from the moment the fault is
injected to the first DNS answer that shows its effect (see dnsprobe.Observer).
"""
import argparse
import os
import re
import smtplib
import threading
import time
from dataclasses import dataclass, field

import appliance as ap
import netlab
from appliance import MEMBERS, SMTP, EDGE

# Bounds (seconds), from the cluster timing in appliance.py.
POLL_TIMEOUT = min(0.75 * ap.POLL, 5)
B_REPORTED = ap.COMPUTE + ap.POLL + ap.REFRESH              # next poll + refresh
B_UNANSWERED = ap.FALL * ap.POLL + POLL_TIMEOUT + ap.REFRESH  # 3 polls + refresh
B_RISE = ap.RISE * ap.POLL + ap.REFRESH                     # rise
SECONDARY = 5.0                                             # secondaries: + 5 s
SLACK = 0.2          # the observers' resolution (two sampling periods)
OVERTIME = 5.0       # keep watching this long past a bound, to print the real time
IMPAIRED_POLLS = 120
FULL = frozenset(MEMBERS[m] for m in ap.SMTP_MEMBERS)
EDGE_FULL = frozenset(MEMBERS[m] for m in ap.EDGE_MEMBERS)
SERVERS = ("broker", "knot", "nsd")


@dataclass
class Row:
    """One line of the matrix."""
    fault: str
    expect: str
    bound: str
    measured: dict          # server -> text
    ok: bool
    notes: list = field(default_factory=list)


def now():
    return time.monotonic()


def secs(t):
    return f"{t:.1f}"


def without(*names):
    return FULL - {MEMBERS[n] for n in names}


def show(s):
    return "{" + ", ".join(sorted(s, key=lambda a: int(a.rsplit(".", 1)[1]))) + "}" \
        if s is not None else "no answer"


def inject(what, action):
    """Run the fault's action; returns the monotonic time it completed."""
    netlab.log(f"  inject: {what}")
    action()
    return now()


def change_row(app, fault, expect, t0, want, bound, name=SMTP, secondaries=True):
    """Measure, from t0, when each server's answer for name becomes `want`:
    brokerd within bound, Knot and NSD within bound + SECONDARY."""
    sec_bound = bound + SECONDARY
    window = sec_bound + OVERTIME
    measured, ok, notes = {}, True, []
    for label in SERVERS if secondaries else SERVERS[:1]:
        t = app.observers[label].first(lambda s: s.sets.get(name) == want, t0, window)
        limit = bound if label == "broker" else sec_bound
        if t is None:
            last = app.observers[label].last()
            measured[label] = f">{window:.0f}"
            notes.append(f"{label} still answers {show(last.sets.get(name) if last else None)}")
            ok = False
        else:
            measured[label] = secs(t - t0)
            if t - t0 > limit + SLACK:
                ok = False
                notes.append(f"{label} took {t - t0:.1f} s > {limit:.1f} s")
    bound_text = f"{bound:.1f} / {sec_bound:.1f}" if secondaries else f"{bound:.1f}"
    return Row(fault, expect, bound_text, measured, ok, notes)


def held(app, row, want, since, until, name=SMTP):
    """The broker's answer stayed `want` from its change until the repair
    began (`until`: taken before the repair's action, which may take a
    while — a restarted daemon is polled before its start returns)."""
    obs = app.observers["broker"]
    changed = obs.find(lambda s: s.sets.get(name) == want, since, until)
    if changed is None:
        return
    bad = obs.find(lambda s: s.sets.get(name) != want, changed.begun, until)
    if bad is not None:
        row.ok = False
        row.notes.append(f"broker answer moved back during the fault: {show(bad.sets.get(name))}")


def seconds_until(probe, t0, window):
    """Poll probe() until t0 + window; seconds from t0 to the first true, or None."""
    while True:
        if probe():
            return now() - t0
        if now() >= t0 + window:
            return None
        time.sleep(0.1)


def settle(app, timeout=40):
    """Before a fault: brokerd answers every member (both clusters), and the
    secondaries have brokerd's serial (not required: a secondary that cannot
    follow shows in the fault's own row)."""
    obs = app.observers["broker"]
    ok = obs.first(lambda s: s.sets.get(SMTP) == FULL and s.sets.get(EDGE) == EDGE_FULL,
                   now(), timeout)
    if ok is None:
        last = obs.last()
        raise RuntimeError(f"the lab did not settle: brokerd answers {show(last.sets.get(SMTP))}")
    serial = obs.last().serial
    for label in ("knot", "nsd"):
        app.observers[label].first(lambda s: s.serial == serial, now(), 10)


# --- faults ----------------------------------------------------------------

def relay_killed(app):
    m = app.members["m1"]
    t0 = inject("kill -9 smtp-relayd on m1 (metricd keeps running)", m.relay.kill)
    rows = [change_row(app, "relay killed (metricd alive)", "m1 leaves", t0,
                       without("m1"), B_REPORTED)]
    r0 = now()
    t1 = inject("start smtp-relayd on m1 again", m.start_relay)
    held(app, rows[0], without("m1"), t0, r0)
    rows.append(change_row(app, "  relay back", "m1 returns", t1, FULL, B_REPORTED))
    return rows


def max_sessions(app):
    m = app.members["m2"]
    conns = []

    def saturate():
        with netlab.inside(app.client.ns):
            for _ in range(ap.MAX_SESSIONS):
                c = smtplib.SMTP(m.addr, 25, timeout=10)
                conns.append(c)
    t0 = inject(f"open {ap.MAX_SESSIONS} SMTP sessions to m2 (max-sessions {ap.MAX_SESSIONS})",
                saturate)
    extra = smtp_code(app, m.addr)
    rows = [change_row(app, "relay at max-sessions", "m2 leaves", t0, without("m2"),
                       B_REPORTED)]
    if extra != 421:  # then the fault was not injected: the row proves nothing
        rows[0].ok = False
        rows[0].notes.append(f"a session beyond max-sessions got {extra}, not 421")

    def release():
        for c in conns:
            try:
                c.quit()
            except (OSError, smtplib.SMTPException):
                c.close()
    r0 = now()
    t1 = inject("close the sessions", release)
    held(app, rows[0], without("m2"), t0, r0)
    rows.append(change_row(app, "  sessions closed", "m2 returns", t1, FULL, B_REPORTED))
    return rows


def smtp_code(app, addr):
    """The greeting code a new SMTP client gets from addr (None: no greeting)."""
    try:
        with netlab.inside(app.client.ns):
            c = smtplib.SMTP(timeout=10)
            code, _ = c.connect(addr, 25)
        c.close()
        return code
    except smtplib.SMTPConnectError as e:
        return e.smtp_code
    except (OSError, smtplib.SMTPException):
        return None


class Sender(threading.Thread):
    """Sends one small message every period to a relay, from the client
    namespace; keeps the queue ID of every 250 and counts the refusals."""

    def __init__(self, app, addr, period=0.2):
        super().__init__(name=f"sender-{addr}", daemon=True)
        self.ns = app.client.ns
        self.addr = addr
        self.period = period
        self.accepted = []
        self.refused = 0
        self.running = True

    def run(self):
        netlab.enter(self.ns)
        n = 0
        while self.running:
            n += 1
            self.send_one(n)
            time.sleep(self.period)

    def send_one(self, n):
        try:
            s = smtplib.SMTP(self.addr, 25, timeout=10)
            try:
                s.ehlo("client.lab.test")
                code, _ = s.mail("sender@client.test")
                if code == 250:
                    code, _ = s.rcpt("user@example.test")
                if code == 250:
                    code, msg = s.data(f"Subject: lab {n}\r\n\r\nmessage {n}\r\n")
                    found = re.search(rb"queued as ([0-9a-f]+)", msg)
                    if code == 250 and found:
                        self.accepted.append(found.group(1).decode())
                        return
                self.refused += 1
            finally:
                s.close()
        except (OSError, smtplib.SMTPException):
            self.refused += 1

    def stop(self):
        self.running = False
        self.join(15)


def queue_fault(app, fault, what, spoil, repair):
    """A relay whose queue cannot take mail: m3 leaves, returns when repaired,
    and every message that got 250 is still in its queue."""
    m = app.members["m3"]
    sender = Sender(app, m.addr)
    sender.start()
    try:
        netlab.wait_until(lambda: len(sender.accepted) >= 3, 15, "m3 to accept mail")
        refused_before = sender.refused
        t0 = inject(what, spoil)
        rows = [change_row(app, fault, "m3 leaves", t0, without("m3"), B_REPORTED)]
        r0 = now()
        t1 = inject("repair the queue", repair)
        refused = sender.refused - refused_before
        held(app, rows[0], without("m3"), t0, r0)
        rows.append(change_row(app, "  queue repaired", "m3 returns", t1, FULL, B_REPORTED))
        accepted = len(sender.accepted)
        netlab.wait_until(lambda: len(sender.accepted) >= accepted + 3, 15,
                          "m3 to accept mail again")
    finally:
        sender.stop()
    lost = set(sender.accepted) - m.relayctl_ids()
    rows.append(Row("  messages lost", "0 lost (every 250 is queued)", "0",
                    {"broker": f"{len(lost)} of {len(sender.accepted)}"}, not lost,
                    [f"{refused} messages refused while the queue was broken"] +
                    ([f"lost: {sorted(lost)[:5]}"] if lost else [])))
    if refused == 0:
        rows[0].notes.append("the relay never refused a message while its queue was broken")
    return rows


def queue_unwritable(app):
    spool = app.members["m3"].spool
    dirs = [os.path.join(spool, d) for d in ("tmp", "queue")]

    def chmod(mode):
        for d in dirs:
            os.chmod(d, mode)
    return queue_fault(app, "queue directory unwritable", "chmod 0500 spool/tmp spool/queue on m3",
                       lambda: chmod(0o500), lambda: chmod(0o700))


def disk_reserve(app):
    spool = app.members["m3"].spool
    filler = os.path.join(spool, "lab-filler")
    reserve = 4 << 20

    def fill():
        st = os.statvfs(spool)
        free = st.f_bavail * st.f_frsize
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, free - reserve // 2)
        finally:
            os.close(fd)
    rows = queue_fault(app, "disk reserve reached (tmpfs)",
                       f"fill m3's queue tmpfs to {reserve // 2 >> 20} MiB free "
                       f"(queue-min-free {ap.QUEUE_MIN_FREE})",
                       fill, lambda: os.unlink(filler))
    if not app.has_queue_min_free:
        rows[0].ok = False
        rows[0].notes.append("smtp-relayd refuses `queue-min-free`: no disk reserve to reach")
    return rows


def metricd_killed(app):
    m = app.members["m1"]
    t0 = inject("kill -9 metricd on m1", m.metricd.kill)
    rows = [change_row(app, "metricd killed", "m1 leaves", t0, without("m1"), B_UNANSWERED)]
    r0 = now()
    t1 = inject("start metricd on m1 again", m.start_metricd)
    held(app, rows[0], without("m1"), t0, r0)
    rows.append(change_row(app, "  metricd back", "m1 returns (rise)", t1, FULL, B_RISE))
    return rows


def link_down(app):
    link = app.members["m2"].host.link
    t0 = inject("ip link set eth0 down on m2", link.down)
    rows = [change_row(app, "member link down (partition)", "m2 leaves", t0, without("m2"),
                       B_UNANSWERED)]
    r0 = now()
    t1 = inject("ip link set eth0 up on m2", link.up)
    held(app, rows[0], without("m2"), t0, r0)
    rows.append(change_row(app, "  link up", "m2 returns (rise)", t1, FULL, B_RISE))
    return rows


def key_mismatch(app):
    m = app.members["m3"]
    addr = MEMBERS["m3"]

    def rekey(secret):
        m.metricd.stop()
        m.start_metricd(secret)
    t0 = inject("restart metricd on m3 with another secret", lambda: rekey(ap.WRONG_SECRET))
    rows = [change_row(app, "key mismatch", "m3 leaves", t0, without("m3"), B_UNANSWERED)]
    window = B_UNANSWERED + OVERTIME
    named = seconds_until(lambda: "key mismatch" in str(app.broker.member(addr)), t0, window)
    logged = f"{addr}" in app.broker.log() and "key mismatch" in app.broker.log()
    mine = app.broker.member(addr) or {}
    reason = Row("  reason named", "`key mismatch` in /status and log", f"{B_UNANSWERED:.1f}",
                 {"broker": secs(named) if named is not None else f">{window:.0f}"},
                 named is not None and named <= B_UNANSWERED + SLACK and logged)
    if named is None:
        reason.notes.append(f"/status says why={mine.get('why')!r} reason={mine.get('reason')!r} "
                            f"last_error={mine.get('last_error')!r}")
    if not logged:
        reason.notes.append("brokerd's log never says `key mismatch`")
    rows.append(reason)
    t1 = inject("restart metricd on m3 with the right secret", lambda: rekey(ap.SECRET))
    rows.append(change_row(app, "  key fixed", "m3 returns (rise)", t1, FULL, B_RISE))
    return rows


def impaired_links(app, kinds):
    """10% loss each way on m4's link, 200 ms delay each way on m5's, for
    IMPAIRED_POLLS polls of the edge cluster: neither may ever leave."""
    setup = {"loss": ("m4", dict(loss=10), "10% loss each way on a member link"),
             "delay": ("m5", dict(delay_ms=200), "200 ms delay each way on a member link")}
    logs_before = app.broker.log()
    counters = {}
    for kind in kinds:
        name, knobs, _ = setup[kind]
        counters[kind] = app.broker.member(MEMBERS[name], EDGE) or {}
        app.members[name].host.link.impair(**knobs)
        netlab.log(f"  inject: {knobs} on {name} ({app.lab.impairment})")
    t0 = now()
    until = t0 + IMPAIRED_POLLS * ap.EDGE_POLL
    while now() < until:   # the observation window itself, not a readiness wait
        time.sleep(min(1.0, until - now()))
    t1 = now()
    rows = {}
    for kind in kinds:
        name, _, fault = setup[kind]
        app.members[name].host.link.clear()
        rows[kind] = [flap_row(app, fault, name, t0, t1, counters[kind], logs_before)]
    netlab.log("  impairments removed")
    return rows


def flap_row(app, fault, name, t0, t1, before, logs_before):
    addr = MEMBERS[name]
    measured, notes, ok = {}, [], True
    for label in SERVERS:
        samples = app.observers[label].window(t0, t1)
        changes = sum(1 for a, b in zip(samples, samples[1:]) if a.sets.get(EDGE) != b.sets.get(EDGE))
        out = sum(1 for s in samples if s.sets.get(EDGE) != EDGE_FULL)
        measured[label] = f"{changes} changes"
        if changes or out:
            ok = False
            notes.append(f"{label}: {out} of {len(samples)} answers without {name}")
    new_log = app.broker.log()[len(logs_before):]
    downs = len(re.findall(rf"member {re.escape(addr)} down", new_log))
    after = app.broker.member(addr, EDGE) or {}
    polls = after.get("polls", 0) - before.get("polls", 0)
    missed = after.get("timeouts", 0) - before.get("timeouts", 0)
    link = app.members[name].host.link
    dropped = f", the wire dropped {link.dropped} frames" if hasattr(link, "dropped") else ""
    notes.insert(0, f"{polls} polls, {missed} timed out, {downs} 'down' log lines, "
                    f"last rtt {after.get('rtt_us', 0) / 1000:.0f} ms{dropped}")
    if downs:
        ok = False
    return Row(fault, f"{name} never leaves in {IMPAIRED_POLLS} polls", "no flap", measured, ok,
               notes)


def brokerd_restart(app):
    obs = app.observers["broker"]
    before = max((s.serial for s in obs.window(0) if s.serial is not None), default=0)
    netlab.log(f"  highest serial served so far: {before}")
    netlab.log("  inject: restart brokerd (SIGTERM, start again)")
    app.broker.stop()
    t_stop = now()
    app.broker.start()
    first = obs.first_sample(lambda s: s.sets.get(SMTP) is not None, t_stop, 15)
    ttl = first.ttls.get(SMTP) if first is not None else None
    settle(app)
    m = app.members["m1"]
    t0 = inject("next change: kill -9 metricd on m1", m.metricd.kill)
    change = change_row(app, "  next change after restart", "secondaries follow", t0,
                        without("m1"), B_UNANSWERED)
    m.start_metricd()
    settle(app)
    served = [s.serial for s in obs.window(t_stop) if s.serial is not None]
    lowest = min(served, default=None)
    serial = Row("brokerd restarted mid-run", f"serial never lower than {before}", "-",
                 {"broker": f"min {lowest}"}, lowest is not None and lowest >= before)
    for label in ("knot", "nsd"):
        last = app.observers[label].last()
        serial.measured[label] = f"at {last.serial if last else None}"
    if lowest is not None and lowest < before:
        serial.notes.append(f"brokerd served serial {lowest} after {before}")
    first_ttl = Row("  first answers", f"TTL <= dns-ttl {ap.TTL}", "-",
                    {"broker": f"TTL {ttl}"}, ttl is not None and ttl <= ap.TTL)
    if first is None:
        first_ttl.notes.append("no answer for 15 s after the restart")
    return [serial, first_ttl, change]


def sighup(app):
    fast = app.observe("broker-fast", ap.BROKER, period=0.01)
    try:
        return sighup_phases(app, fast)
    finally:
        fast.stop()


def sighup_phases(app, fast):
    keep = ["m1", "m2"]
    state = {n: app.broker.member(MEMBERS[n]) or {} for n in keep}
    swapped = frozenset(MEMBERS[n] for n in keep + ["m4"])
    core = frozenset(MEMBERS[n] for n in keep)
    phases = [("SIGHUP: m3 removed, m4 added", keep + ["m4"], swapped),
              ("  SIGHUP: back to m1-m3", ap.SMTP_MEMBERS, FULL)]
    rows = []
    for fault, members, want in phases:
        t0 = inject(f"reload with members {members}", lambda: app.broker.reload(members))
        row = change_row(app, fault, "keep state; no wrong answer", t0, want, B_RISE)
        row.bound = "-"
        t_end = fast.first(lambda s: s.sets.get(SMTP) == want, t0, 15) or now()
        time.sleep(max(0.0, t_end + 1 - now()))  # and one more second of answers
        allowed = {FULL, swapped, core}
        wrong = [s for s in fast.window(t0 - 0.5, t_end + 1) if s.sets.get(SMTP) not in allowed]
        row.notes.append(f"{len(fast.window(t0 - 0.5, t_end + 1))} answers checked")
        if wrong:
            row.ok = False
            row.notes.append(f"{len(wrong)} wrong answers, e.g. {show(wrong[0].sets.get(SMTP))}")
        rows.append(row)
    for n in keep:
        after = app.broker.member(MEMBERS[n]) or {}
        if after.get("state") != "up" or after.get("polls", 0) < state[n].get("polls", 0):
            rows[0].ok = False
            rows[0].notes.append(f"{n} lost its state: state {after.get('state')}, polls "
                                 f"{state[n].get('polls')} -> {after.get('polls')}")
    return rows


def all_down(app):
    links = [app.members[n].host.link for n in ap.SMTP_MEMBERS]
    t0 = inject("links of m1, m2, m3 down", lambda: [link.down() for link in links])
    rows = [change_row(app, "all members down", "failover address only", t0,
                       frozenset([ap.FAILOVER]), B_UNANSWERED)]
    t1 = inject("links up", lambda: [link.up() for link in links])
    rows.append(change_row(app, "  links up", "members return (rise)", t1, FULL, B_RISE))
    return rows


# Order matters: the impaired-link window runs in the background while the
# faults that keep brokerd running go on; restarts and reloads come after it.
FOREGROUND_EARLY = [("relay-killed", relay_killed), ("max-sessions", max_sessions),
                    ("queue-unwritable", queue_unwritable), ("disk-reserve", disk_reserve),
                    ("metricd-killed", metricd_killed), ("link-down", link_down),
                    ("key-mismatch", key_mismatch)]
BACKGROUND = ["loss", "delay"]
FOREGROUND_LATE = [("brokerd-restart", brokerd_restart), ("sighup", sighup),
                   ("all-down", all_down)]
ALL = [n for n, _ in FOREGROUND_EARLY] + BACKGROUND + [n for n, _ in FOREGROUND_LATE]


# --- the runner -------------------------------------------------------------

class Runner:
    def __init__(self, app, selected):
        self.app = app
        self.selected = selected
        self.results = {}        # test name -> rows

    def run_one(self, name, fn):
        netlab.log(f"fault {name}")
        try:
            settle(self.app)
            rows = fn(self.app)
        except Exception as e:  # a broken fault is a failed test, the lab goes on
            rows = [Row(name, "runs", "-", {}, False, [f"{type(e).__name__}: {e}"])]
        self.results[name] = rows
        for r in rows:
            netlab.log(f"  {'PASS' if r.ok else 'FAIL'} {r.fault.strip()}: "
                       f"{' / '.join(r.measured.get(s, '-') for s in SERVERS)} "
                       f"(bound {r.bound}) {'; '.join(r.notes)}")

    def run(self):
        kinds = [k for k in BACKGROUND if k in self.selected]
        bg = None
        if kinds:
            netlab.log(f"fault {', '.join(kinds)} (background, {IMPAIRED_POLLS} polls)")
            settle(self.app)
            bg = threading.Thread(target=self._background, args=(kinds,), daemon=True)
            bg.start()
        for name, fn in FOREGROUND_EARLY:
            if name in self.selected:
                self.run_one(name, fn)
        if bg is not None:
            bg.join()
        for name, fn in FOREGROUND_LATE:
            if name in self.selected:
                self.run_one(name, fn)

    def _background(self, kinds):
        try:
            self.results.update(impaired_links(self.app, kinds))
        except Exception as e:
            for k in kinds:
                self.results[k] = [Row(k, "runs", "-", {}, False, [f"{type(e).__name__}: {e}"])]

    def matrix(self):
        rows = [r for name in ALL if name in self.results for r in self.results[name]]
        head = ["fault", "expectation", "bound (s) broker / 2nd", "broker", "knot", "nsd", "result"]
        table = [[r.fault, r.expect, r.bound, *(r.measured.get(s, "") for s in SERVERS),
                  "PASS" if r.ok else "FAIL"] for r in rows]
        width = [max(len(str(c)) for c in col) for col in zip(head, *table)]

        def line(cells):
            return " | ".join(str(c).ljust(w) for c, w in zip(cells, width)).rstrip()
        out = [line(head), "-+-".join("-" * w for w in width)]
        for r, cells in zip(rows, table):
            out.append(line(cells))
            for n in r.notes:
                out.append(" " * (width[0] + 3) + "- " + n)
        out.append(f"times in seconds from the fault; >N: not seen within N s; "
                   f"slack {SLACK} s (observer resolution)")
        return "\n".join(out)

    def counts(self):
        passed = sum(1 for rows in self.results.values() if all(r.ok for r in rows))
        return passed, len(self.results) - passed


def select(patterns):
    if not patterns:
        return list(ALL)
    return [n for n in ALL if any(p in n for p in patterns)]


def report(app, runner):
    """Print the matrix, the daemons that died, and the count; True if all passed."""
    died = app.died()
    app.stop_observers()
    print()
    print(runner.matrix())
    for p in died:
        print(f"{p.name} on {p.host.name} died unexpectedly (exit {p.returncode()}); "
              f"log: {p.log_path}")
    passed, failed = runner.counts()
    failed += len(died)
    print(f"{passed} passed, {failed} failed")
    return failed == 0


def main():
    parser = argparse.ArgumentParser(description="mxbroker fault lab")
    parser.add_argument("-k", action="append", default=[], metavar="PATTERN",
                        help="run the faults whose name contains PATTERN (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    parser.add_argument("--keep", action="store_true", help="keep the lab folder (logs)")
    parser.add_argument("--impairment", choices=["auto", "netem", "wire"], default="auto")
    args = parser.parse_args()
    if args.list:
        print("\n".join(ALL))
        return 0
    selected = select(args.k)
    if not selected:
        print(f"no fault matches {args.k}; faults: {', '.join(ALL)}")
        return 2
    prefix = os.environ.get("MXB_LAB_PREFIX", f"mxl{os.getpid()}")
    lab = netlab.Lab(prefix, f"/tmp/{prefix}", args.impairment)
    ok = False
    try:
        netlab.log(f"lab {prefix}: programs from {ap.BIN}; link impairment: {lab.impairment}")
        app = ap.Appliance(lab)
        runner = Runner(app, selected)
        try:
            app.start()
        except (RuntimeError, TimeoutError) as e:
            print(f"the lab did not come up: {e}")
            first = str(e).splitlines()[0]
            for name in selected:
                runner.results[name] = [Row(name, "runs", "-", {}, False,
                                            [f"the lab did not come up: {first}"])]
        else:
            runner.run()
        ok = report(app, runner)
    except KeyboardInterrupt as e:
        print(f"lab interrupted ({e}); cleaning up")
    except Exception as e:  # the lab itself broke: say so, fail
        print(f"lab error: {type(e).__name__}: {e}")
        print(f"0 passed, {len(selected)} failed")
    finally:
        lab.cleanup()
        if ok and not args.keep:
            lab.remove_dir()
        else:
            print(f"lab folder (logs, configurations): {lab.dir}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
