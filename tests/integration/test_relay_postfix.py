"""Debian's Postfix as a real SMTP client: a private Postfix instance on
loopback with relayhost = [127.0.0.1]:PORT hands its mail to smtp-relayd,
which queues it."""
import smtplib

import pytest

import mxb
from relay_util import PrivatePostfix, Relay


@pytest.fixture
def postfix_to_relay(daemons):
    relay = Relay(daemons)
    pf = PrivatePostfix(daemons, f"[127.0.0.1]:{relay.port}")
    yield relay, pf
    pf.stop()


def test_postfix_relays_into_smtp_relayd(postfix_to_relay):
    relay, pf = postfix_to_relay
    body = ("Subject: via Postfix\r\nMessage-ID: <pf-1@client.test>\r\n\r\n"
            "first line\r\n.\r\n..two dots\r\nGr\u00fc\u00dfe\r\n")
    with smtplib.SMTP("127.0.0.1", pf.port, timeout=20) as s:
        s.ehlo("client.test")
        s.sendmail("alice@client.test", ["bob@example.test", "carol@outside.test"],
                   body.encode("utf-8"), mail_options=["BODY=8BITMIME"])
    mxb.wait_until(lambda: len(relay.queue_ids()) == 1, 30,
                   "Postfix to hand the message to smtp-relayd")
    (qid,) = relay.queue_ids()
    msg = relay.ctl_json("show", qid)
    assert msg["sender"] == "alice@client.test"
    assert sorted(r["address"] for r in msg["recipients"]) == \
        ["bob@example.test", "carol@outside.test"]
    content = msg["content"]
    assert content.startswith("Received: from pf.test (unknown [127.0.0.1])")
    assert "by pf.test (Postfix)" in content
    assert content.endswith("first line\r\n.\r\n..two dots\r\nGr\u00fc\u00dfe\r\n")
    assert f"status=sent (250 2.0.0 Ok: queued as {qid})" in pf.log()
    st = relay.status()["counters"]
    assert st["messages_queued"] == 1 and st["protocol_errors"] == 0
