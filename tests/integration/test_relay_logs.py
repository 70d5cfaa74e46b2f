"""smtp-relayd's log: every stderr line stamped with RFC 3339 time, session
lines as Postfix's smtpd writes them (connect, reject, client=, message-id=,
lost connection, timeout, non-SMTP command, disconnect with command counts),
queue errors that name the file and the errno.  Real clients: smtplib and
raw sockets."""
import os
import re
import smtplib
import subprocess

import mxb
from relay_util import Relay

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d"
CLIENT = "unknown[127.0.0.1]"
QID = r"[0-9a-f]{16}"


def wait_log(relay, pattern, timeout=10):
    """Wait until a log line matches `pattern` (a regex); returns the match."""
    found = []

    def probe():
        m = re.search(pattern, relay.d.log(), re.M)
        if m:
            found.append(m)
        return bool(m)
    mxb.wait_until(probe, timeout, f"a log line matching {pattern!r}", relay.d.proc)
    return found[0]


def test_every_stderr_line_has_an_rfc3339_timestamp(daemons):
    relay = Relay(daemons)
    with smtplib.SMTP(relay.host, relay.port, timeout=10) as s:
        s.ehlo("client.test")
    wait_log(relay, "disconnect from")
    lines = relay.d.log().splitlines()
    assert lines, "no log"
    for line in lines:
        assert re.match(STAMP + r" smtp-relayd: ", line), line


def test_a_conversation_logs_like_postfix_smtpd(daemons):
    relay = Relay(daemons)
    client = "unknown[127.0.0.2]"  # not in trusted-networks: no relaying
    msg = ("From: <s@client.test>\r\nSubject: hi\r\n"
           "Message-ID: <abc.123@client.test>\r\n\r\nhello\r\n")
    with smtplib.SMTP(relay.host, relay.port, timeout=10,
                      source_address=("127.0.0.2", 0)) as s:
        s.ehlo("client.test")
        refused = s.sendmail("s@client.test", ["x@elsewhere.test", "u@example.test"], msg)
    assert list(refused) == ["x@elsewhere.test"]
    (qid,) = relay.queue_ids()
    log = wait_log(relay, r"disconnect from .*").string
    assert f"smtp: connect from {client}" in log
    assert (f"smtp: NOQUEUE: reject: RCPT from {client}: 550 5.7.1 <x@elsewhere.test>: "
            "Relay access denied; from=<s@client.test> to=<x@elsewhere.test> "
            "proto=ESMTP helo=<client.test>") in log
    assert f"smtp: {qid}: client={client}" in log
    assert f"smtp: {qid}: message-id=<abc.123@client.test>" in log
    assert re.search(rf"smtp: {qid}: from=<s@client\.test>, size=\d+, nrcpt=1 \(queue active\)",
                     log)
    # smtplib: EHLO, MAIL, RCPT (refused), RCPT, DATA, QUIT.
    assert (f"smtp: disconnect from {client} ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 "
            "commands=5/6") in log
    order = [log.index(s) for s in ("connect from", "NOQUEUE: reject", f"{qid}: client=",
                                    f"{qid}: message-id=", "disconnect from")]
    assert order == sorted(order)


def test_rejects_at_mail_and_data_carry_the_reply(daemons):
    relay = Relay(daemons, "max-message-size 2000;")
    c = relay.connect()
    assert c.cmd("HELO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<big@client.test> SIZE=5000")[0] == 552
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c.cmd("DATA")[0] == 554
    assert c.cmd("QUIT")[0] == 221
    c.close()
    log = wait_log(relay, "disconnect from").string
    assert (f"NOQUEUE: reject: MAIL from {CLIENT}: 552 5.3.4 Message size exceeds fixed "
            "maximum message size; from=<big@client.test> proto=SMTP helo=<client.test>") in log
    assert (f"NOQUEUE: reject: DATA from {CLIENT}: 554 5.5.1 Error: no valid recipients; "
            "from=<s@client.test> proto=SMTP helo=<client.test>") in log
    assert f"disconnect from {CLIENT} helo=1 mail=1/2 data=0/1 quit=1 commands=3/5" in log


def test_non_smtp_command_is_logged_and_refused(daemons):
    relay = Relay(daemons)
    c = relay.connect()
    c.send("GET / HTTP/1.1\r\nHost: relay.test\r\n\r\n")
    code, text = c.reply()
    assert code == 521, text
    assert c.closed()
    c.close()
    log = wait_log(relay, "disconnect from").string
    assert f"smtp: non-SMTP command from {CLIENT}: GET / HTTP/1.1" in log
    assert f"disconnect from {CLIENT} unknown=0/1 commands=0/1" in log


def test_lost_connection_in_data_names_the_queue_id(daemons):
    relay = Relay(daemons)
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
    assert c.cmd("RCPT TO:<u@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send("Subject: cut\r\n\r\npartial line\r\n")
    c.close()
    m = wait_log(relay, rf"smtp: ({QID}): lost connection after DATA \((\d+) bytes\) "
                        rf"from {re.escape(CLIENT)}")
    qid = m.group(1)
    assert int(m.group(2)) == len("Subject: cut\r\n\r\npartial line\r\n")
    log = relay.d.log()
    assert f"smtp: {qid}: client={CLIENT}" in log
    assert f"disconnect from {CLIENT} ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4" in log
    assert relay.queue_ids() == []


def test_lost_connection_and_timeout_after_a_command(daemons):
    relay = Relay(daemons, "command-timeout 1;")
    c = relay.connect()
    assert c.cmd("EHLO client.test")[0] == 250
    c.close()
    wait_log(relay, rf"smtp: lost connection after EHLO from {re.escape(CLIENT)}")
    c = relay.connect()
    assert c.cmd("HELO client.test")[0] == 250
    assert c.reply()[0] == 421
    c.close()
    wait_log(relay, rf"smtp: timeout after HELO from {re.escape(CLIENT)}")


def test_queue_error_names_the_file_and_errno(daemons):
    """ENOSPC during a commit: the log says which call failed on which file.
    The disk fills after DATA was accepted, so the commit itself fails."""
    from test_relay_accepting import Tmpfs
    fs = Tmpfs(os.path.join(daemons.dir, "spool"), "4m")
    try:
        relay = Relay(daemons, extra="max-message-size 2M; queue-min-free 0;")
        c = relay.connect()
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<s@client.test>")[0] == 250
        assert c.cmd("RCPT TO:<u@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        filler = os.path.join(relay.spool, "filler")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True)
        c.send(b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 600 + b".\r\n")
        code, text = c.reply()
        assert code == 452, text
        c.close()
        spool = re.escape(relay.spool)
        m = wait_log(relay, rf"queue: ({QID}): (write|fsync|close) {spool}/tmp/({QID})(?:\.data)?: "
                            r"No space left on device$")
        assert m.group(1) == m.group(3)
        wait_log(relay, rf"{m.group(1)}: reject: END-OF-MESSAGE from {re.escape(CLIENT)}: "
                        r"452 4\.3\.1 ")
    finally:
        daemons.stop_all()
        fs.umount()
