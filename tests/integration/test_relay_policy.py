"""Never an open relay: from an untrusted address (127.0.0.99, while
trusted-networks is 127.0.0.1/32) every classic relay trick is refused, and
plain recipients in the relay and local domains are accepted."""
import subprocess

import pytest

from conftest import require_tool
from relay_util import Relay

UNTRUSTED = "127.0.0.99"

# Each is sent as "RCPT TO:" + form, exactly.
REFUSED = [
    "<u@outside.test>",
    "<U@OUTSIDE.TEST>",
    "<u@Outside.Test>",
    "<u%outside.test@example.test>",
    "<u%outside.test@mail.example.test>",
    "<outside.test!u@example.test>",
    "<outside.test!u>",
    "<\"u@outside.test\"@example.test>",
    "<\"u%outside.test\"@example.test>",
    "<\"u\"@outside.test>",
    "<\"u@outside.test\">",
    "<@example.test:u@outside.test>",
    "<@example.test,@relay.test:u@outside.test>",
    "<@outside.test:u@example.test>",
    "<u@[127.0.0.1]>",
    "<u@[IPv6:::1]>",
    "<u@[192.0.2.1]>",
    "<u@127.0.0.1>",
    "<u@outside.test.>",
    "<u@example.test.>",
    "<u@example.test.outside.test>",
    "<u@EXAMPLE.TEST.OUTSIDE.TEST>",
    "<u@badexample.test>",
    "<u@example.test@outside.test>",
    "<u@outside.test>@example.test",
    "<u@outside.test%example.test>",
    "<u\\@outside.test@example.test>",
    "<postmaster@outside.test>",
    "<u@localhost>",
    "<root@relay.test.outside.test>",
    "<u@outside.test >",
    "u@outside.test",
    "<u@mail.example.test.outside.test>",
]

ACCEPTED = [
    "<u@example.test>",
    "<U@EXAMPLE.TEST>",
    "<u@sub.example.test>",
    "<alice@mail.example.test>",
    "<postmaster>",
    "<POSTMASTER>",
    "<postmaster@mail.example.test>",
    "<Postmaster@relay.test>",
]


@pytest.fixture
def relay(daemons):
    return Relay(daemons)


def test_relay_tricks_refused_from_untrusted(relay):
    assert len(REFUSED) >= 25
    c = relay.connect(source=UNTRUSTED)
    assert c.cmd("EHLO untrusted.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@untrusted.test>")[0] == 250
    answers = {form: c.cmd("RCPT TO:" + form) for form in REFUSED}
    accepted = {f: a for f, a in answers.items() if a[0] < 500}
    assert accepted == {}, f"relay tricks accepted: {accepted}"
    for form, (code, text) in answers.items():
        assert code in (501, 550, 553, 554, 555), (form, text)
    code, text = c.cmd("DATA")
    assert code == 554, text
    assert relay.queue_files() == []
    assert relay.status()["counters"]["relay_denied"] >= 20


def test_relay_and_local_domains_accepted_from_untrusted(relay):
    c = relay.connect(source=UNTRUSTED)
    assert c.cmd("EHLO untrusted.test")[0] == 250
    assert c.cmd("MAIL FROM:<a@untrusted.test>")[0] == 250
    for form in ACCEPTED:
        code, text = c.cmd("RCPT TO:" + form)
        assert code == 250, (form, text)
    assert c.cmd("RCPT TO:<u@example.test>")[0] == 250   # a duplicate: kept once
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: to relay domains\r\n\r\nhi\r\n.\r\n")
    assert c.reply()[0] == 250
    (qid,) = relay.queue_ids()
    msg = relay.ctl_json("show", qid)
    assert msg["client"]["address"] == UNTRUSTED
    assert len(msg["recipients"]) == len(ACCEPTED)


def test_trusted_client_may_relay_anywhere(relay):
    c = relay.connect()
    c.cmd("EHLO trusted.test")
    code, _ = c.transaction("a@trusted.test", ["u@outside.test", "v@[192.0.2.1]"],
                            b"Subject: out\r\n\r\nhi\r\n.\r\n")
    assert code == 250


def test_swaks_from_untrusted_is_denied(relay):
    exe = require_tool("swaks")
    r = subprocess.run([exe, "--server", f"{relay.host}:{relay.port}", "--local-interface",
                        UNTRUSTED, "--from", "a@untrusted.test", "--to", "u@outside.test",
                        "--timeout", "10"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "550 5.7.1 <u@outside.test>: Relay access denied" in r.stdout
    assert relay.queue_files() == []
