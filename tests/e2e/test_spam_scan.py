"""Port 25's content scan against a real rspamd (issue 18, first slice).

rspamd runs as the Debian package ships it, started by the test with its own
configuration in a temporary directory (``tests/support/rspamd.py``: loopback only, no
redis, nothing leaves the machine).  Messages go over TCP with smtplib from a 127.0.0.x
address (not a trusted network, so scanned); what is checked is what the sender, the
customer and the support desk see: the reply to the end of DATA, the X-Spam-* fields of
the stored message, and ``mailstack rejections`` (the CLI) for a refusal.
"""

from __future__ import annotations

import email
import json
import smtplib
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from twisted.logger import formatEvent, globalLogPublisher

from mailstack.store import mailboxes, whitelist
from tests.support.cli import Cli
from tests.support.rspamd import BINARY, DEFERRED_RCPT, MISSING, Rspamd

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(BINARY is None, reason=MISSING)]
SENDER = "127.0.0.50"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "metrics", "protocol": "metrics", "port": 0}]


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    scanner = Rspamd(tmp_path_factory.mktemp("rspamd")).start()
    yield scanner
    scanner.stop()


def mx_with(make_server, db_url, tmp_path, url, timeout=15.0):
    server = make_server(listeners=LISTENERS,
                         spam={"enabled": True, "url": url, "timeout": timeout})
    server.alice = server.add_account("alice@example.test", "spam-scan-pw")
    config = tmp_path / "cli.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n')
    server.desk = Cli(config, in_process=True)
    return server


@pytest.fixture
def mx(make_server, db_url, tmp_path, rspamd):
    return mx_with(make_server, db_url, tmp_path, rspamd.url)


def message(body="Dear Alice,\r\n\r\nsee you on Monday.\r\n", dated=True,
            extra="") -> bytes:
    head = "From: Bob <bob@sender.test>\r\nTo: alice@example.test\r\nSubject: Monday\r\n"
    if dated:
        head += "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <monday@sender.test>\r\n"
    return (head + extra + "\r\n" + body).encode()


def send(server, data: bytes, rcpt="alice@example.test"):
    """(code, text) of the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), source_address=(SENDER, 0),
                      timeout=60) as client:
        client.ehlo("mail.sender.test")
        client.mail("bob@sender.test")
        assert client.rcpt(rcpt)[0] == 250
        code, text = client.data(data)
        return code, text.decode()


def stored(server) -> list[email.message.Message]:
    def bodies(conn):
        info = mailboxes.require_folder(conn, server.alice, "INBOX")
        ids = [m.id for m in mailboxes.list_messages(conn, info.id)]
        return [mailboxes.get_bodies(conn, [i])[i] for i in ids]
    return [email.message_from_bytes(b) for b in server.db(bodies)]


def test_gtube_is_refused_550_with_a_ref_the_desk_finds_with_score_and_symbols(mx):
    code, text = send(mx, message(body=GTUBE + "\r\n"))
    assert code == 550 and text.startswith("5.7.1 "), text
    assert "GTUBE" not in text                  # the rules stay ours
    ref = text.rsplit("(ref ", 1)[1].rstrip(")")
    (row,) = json.loads(mx.desk("rejections", "--message", ref, "--format", "json").stdout)
    assert (row["check"], row["client_ip"], row["to"]) == ("spam", SENDER, "alice@example.test")
    assert row["detail"].startswith("rspamd reject, score ") and "GTUBE" in row["detail"]
    table = mx.desk("rejections", "--from", "bob@sender.test").stdout
    assert ref in table and "GTUBE" in table
    assert stored(mx) == []


def test_a_whitelisted_client_is_scanned_and_marked_not_refused(mx):
    mx.db(whitelist.add, SENDER, "partner's gateway", "desk", mx.now())
    assert send(mx, message(body=GTUBE + "\r\n"))[0] == 250
    (msg,) = stored(mx)
    assert msg["X-Spam-Status"].startswith("Yes, ") and "action=reject" in msg["X-Spam-Status"]
    assert "GTUBE" in msg["X-Spam-Symbols"]


def test_soft_reject_is_deferred_451_and_logged(mx):
    mx.add_account(DEFERRED_RCPT, "spam-scan-pw")
    code, text = send(mx, message(), rcpt=DEFERRED_RCPT)
    assert code == 451 and text.startswith("4.7.1 "), text
    ref = text.rsplit("(ref ", 1)[1].rstrip(")")
    (row,) = json.loads(mx.desk("rejections", "--message", ref, "--format", "json").stdout)
    assert row["check"] == "spam" and "rspamd soft reject" in row["detail"]
    assert "DEFER_TEST_RCPT" in row["detail"]      # rspamd saw our Rcpt


def test_a_normal_message_is_delivered_with_its_score(mx):
    assert send(mx, message())[0] == 250
    (msg,) = stored(mx)
    assert msg["X-Spam-Status"].startswith("No, score="), msg["X-Spam-Status"]
    assert "action=no_action" in msg["X-Spam-Status"]
    assert float(msg["X-Spam-Score"]) < 3
    assert "MIME_GOOD" in msg["X-Spam-Symbols"]


def test_add_header_action_is_delivered_to_inbox_marked_spam_and_forged_fields_go(mx):
    forged = "X-Spam-Status: No, score=-100\r\nX-Spam-Score: -100\r\n"
    assert send(mx, message(dated=False, extra=forged))[0] == 250
    (msg,) = stored(mx)
    assert msg.get_all("X-Spam-Status") == [msg["X-Spam-Status"]]
    assert msg["X-Spam-Status"].startswith("Yes, score="), msg["X-Spam-Status"]
    assert "action=add_header" in msg["X-Spam-Status"]
    assert msg.get_all("X-Spam-Score") == [msg["X-Spam-Score"]]
    assert float(msg["X-Spam-Score"]) >= 3
    symbols = " ".join(msg["X-Spam-Symbols"].split())
    assert "MISSING_DATE(1.00)" in symbols and "MISSING_MID(2.50)" in symbols


def scans(server) -> dict:
    """{result: count} of mailstack_spam_scans, from the metrics listener."""
    url = f"http://127.0.0.1:{server.port('metrics')}/metrics"
    with urllib.request.urlopen(url, timeout=10) as answer:
        text = answer.read().decode()
    return {s.labels["result"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "mailstack_spam_scans_total"}


@pytest.fixture
def warnings():
    """The text of the warning lines logged during the test."""
    lines = []

    def observe(event):
        if event.get("log_level") is not None and event["log_level"].name == "warn":
            lines.append(formatEvent(event))
    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


def test_rspamd_stopped_mid_test_mail_is_still_delivered_marked_unchecked(
        make_server, db_url, tmp_path, warnings):
    own = Rspamd(tmp_path / "rspamd").start()
    try:
        mx = mx_with(make_server, db_url, tmp_path, own.url)
        assert send(mx, message())[0] == 250
        own.stop()
        code, text = send(mx, message(body=GTUBE + "\r\n"))
    finally:
        own.stop()
    assert code == 250, text
    first, second = stored(mx)
    assert first["X-Spam-Status"].startswith("No, score=")
    assert second["X-Spam-Status"] == "unchecked" and second["X-Spam-Score"] is None
    failed = [line for line in warnings if "spam scan failed" in line]
    assert len(failed) == 1 and "accepted unchecked" in failed[0], warnings
    assert scans(mx) == {"no_action": 1.0, "failed": 1.0}


def test_rspamd_that_does_not_answer_costs_the_timeout_then_mail_is_delivered_unchecked(
        make_server, db_url, tmp_path):
    with socket.socket() as silent:          # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mx = mx_with(make_server, db_url, tmp_path,
                     f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=1.0)
        code, text = send(mx, message())
    assert code == 250, text
    (msg,) = stored(mx)
    assert msg["X-Spam-Status"] == "unchecked"
