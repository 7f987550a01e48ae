"""Queued outbound delivery: a real DNS server and a receiving SMTP server on loopback."""

from __future__ import annotations

import email
import smtplib
import ssl
import time

import pytest

from mailstack import tls
from mailstack.store import mailboxes, queue
from tests.support.cli import Cli, database_config
from tests.support.dns_server import DNSServer
from tests.support.server import RunningServer, base_config, merge
from tests.support.smtp_sink import SMTPSink
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "outbound pw"
SUBMISSION = [{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]


@pytest.fixture
def world(certs):
    ns = DNSServer().start()
    ns.add("remote.test", "MX", 10, "mx.remote.test")
    ns.add("mx.remote.test", "A", "127.0.0.1")
    ns.add("nullmx.test", "MX", 0, ".")
    ns.fail("broken.test")
    sink = SMTPSink(tls.server_options(certs.certificate, certs.private_key)).start()
    yield ns, sink
    sink.stop()
    ns.stop()


def overrides(ns, sink, **extra):
    return merge({"listeners": SUBMISSION, "dns": {"nameservers": [ns.address], "timeout": 1},
                  "delivery": {"remote_port": sink.port, "retry_schedule": [300, 600],
                               "max_queue_age": 3600, "queue_interval": 60}}, extra)


@pytest.fixture
def mta(make_server, world):
    ns, sink = world
    server = make_server(**overrides(ns, sink))
    server.ann = server.add_account("ann@example.test", PASSWORD)
    server.sink, server.ns = sink, ns
    return server


def submit(server, recipients, subject="outbound"):
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        client.starttls(context=server.context)
        client.login("ann@example.test", PASSWORD)
        return client.sendmail("ann@example.test", recipients,
                               f"From: ann@example.test\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())


def inbox(server):
    return server.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, "INBOX").id)]).values()))


def test_several_recipients_of_a_domain_go_in_one_connection_over_tls(mta):
    assert submit(mta, ["x@remote.test", "y@remote.test"]) == {}
    (got,) = eventually(lambda: mta.sink.messages)
    assert got.recipients == ["x@remote.test", "y@remote.test"] and got.sender == "ann@example.test"
    assert got.tls and b"Subject: outbound" in got.body and b"(Authenticated sender: ann@example.test)" in got.body
    assert mta.sink.state.connections == 1
    eventually(lambda: mta.db(queue.listing) == [])


def test_a_4xx_is_retried_on_the_schedule(mta):
    mta.sink.state.replies["x@remote.test"] = "451 4.2.0 try later"
    submit(mta, ["x@remote.test"])
    (row,) = eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts == 1])
    assert row.status == "queued" and row.last_reply == "451 4.2.0 try later"
    del mta.sink.state.replies["x@remote.test"]
    mta.advance(299)
    time.sleep(0.3)
    assert mta.sink.messages == []
    mta.advance(2)
    eventually(lambda: mta.sink.messages)
    eventually(lambda: mta.db(queue.listing) == [])


def test_a_5xx_bounces_to_the_sender_with_a_dsn(mta):
    mta.sink.state.replies["nobody@remote.test"] = "550 5.1.1 no such user"
    submit(mta, ["nobody@remote.test", "x@remote.test"])
    dsn = eventually(lambda: [b for b in inbox(mta) if b"Undelivered Mail" in b])[0]
    report = email.message_from_bytes(dsn)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    assert b"Final-Recipient: rfc822; nobody@remote.test" in dsn and b"Status: 5.1.1" in dsn
    assert b"Diagnostic-Code: smtp; 550 5.1.1 no such user" in dsn
    assert b"Subject: outbound" in dsn                        # the original headers
    assert [m.recipients for m in mta.sink.messages] == [["x@remote.test"]]


def test_expiry_bounces_with_4_4_7(mta):
    mta.sink.state.replies["x@remote.test"] = "451 4.3.0 always busy"
    submit(mta, ["x@remote.test"])
    eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts == 1])
    for _ in range(8):
        mta.advance(600)
        time.sleep(0.2)
    dsn = eventually(lambda: [b for b in inbox(mta) if b"Undelivered Mail" in b])[0]
    assert b"Status: 4.4.7" in dsn and b"gave up after" in dsn
    assert mta.db(queue.listing) == []


def test_null_mx_and_unknown_domain_bounce_and_dns_failure_retries(mta):
    submit(mta, ["a@nullmx.test", "b@missing.test", "c@broken.test"])
    dsns = eventually(lambda: [b for b in inbox(mta) if b"Undelivered Mail" in b] if len(
        [b for b in inbox(mta) if b"Undelivered Mail" in b]) == 2 else None)
    text = b"".join(dsns)
    assert b"556 5.1.10" in text and b"550 5.1.2" in text
    (row,) = eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts >= 1 and r.status == "queued"])
    assert row.recipient == "c@broken.test" and row.status == "queued" and "4.4.3" in row.last_reply


def test_mail_queued_before_a_restart_is_delivered_after_it(make_server, world, certs, db_url, tmp_path):
    ns, sink = world
    sink.state.replies["x@remote.test"] = "421 4.3.2 shutting down"
    first = make_server(**overrides(ns, sink))
    first.ann = first.add_account("ann@example.test", PASSWORD)
    submit(first, ["x@remote.test"])
    eventually(lambda: [r for r in first.db(queue.listing) if r.attempts == 1])
    first.stop()
    del sink.state.replies["x@remote.test"]
    raw = merge(base_config(db_url, certs, tmp_path / "state2"), overrides(ns, sink))
    second = RunningServer(raw, base_dir=str(tmp_path)).start()
    try:
        second.advance(301)
        (got,) = eventually(lambda: sink.messages)
        assert got.recipients == ["x@remote.test"]
    finally:
        second.stop()


def test_smarthost_carries_everything(make_server, world):
    ns, sink = world
    server = make_server(**overrides(ns, sink, delivery={"smarthost": f"127.0.0.1:{sink.port}"}))
    server.ann = server.add_account("ann@example.test", PASSWORD)
    submit(server, ["someone@nowhere-in-dns.test"])
    (got,) = eventually(lambda: sink.messages)
    assert got.recipients == ["someone@nowhere-in-dns.test"]


def test_queue_cli_lists_shows_flushes_and_deletes(mta, db_url, tmp_path):
    mta.sink.state.replies["x@remote.test"] = "451 4.2.0 later"
    submit(mta, ["x@remote.test"])
    eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts == 1])
    command = Cli(database_config(tmp_path / "cli.toml", db_url))

    def cli(*args):
        return command("queue", *args)
    import json
    rows = json.loads(cli("list", "--format", "json").stdout)
    assert [(r["recipient"], r["status"], r["attempts"]) for r in rows] == [("x@remote.test", "queued", 1)]
    queue_id = rows[0]["queue_id"]
    shown = cli("show", queue_id)
    assert "451 4.2.0 later" in shown.stdout
    del mta.sink.state.replies["x@remote.test"]
    assert cli("flush").returncode == 0
    mta.advance(61)                       # the next pass of the running server picks it up
    eventually(lambda: mta.sink.messages)
    mta.sink.state.replies["y@remote.test"] = "451 4.2.0 later"
    submit(mta, ["y@remote.test"])
    eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts == 1])
    queue_id = json.loads(cli("list", "--format", "json").stdout)[0]["queue_id"]
    assert cli("delete", queue_id).returncode == 0
    assert mta.db(queue.listing) == []
    missing = cli("delete", "nope")
    assert missing.returncode == 1 and "no queued message" in missing.stderr


def test_a_pop_before_smtp_customer_relays_to_the_world(make_server, world, certs):
    import poplib
    ns, sink = world
    listeners = SUBMISSION + [{"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"}]
    server = make_server(**overrides(ns, sink, listeners=listeners,
                                     pop_before_smtp={"enabled": True}))
    server.add_account("ann@example.test", PASSWORD)
    context = ssl.create_default_context(cafile=str(certs.ca))
    pop = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    pop.stls(context=context)
    pop.user("ann@example.test")
    pop.pass_(PASSWORD)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        assert client.sendmail("ann@example.test", ["friend@remote.test"],
                               b"Subject: legacy\r\n\r\nvia the window\r\n") == {}
    (got,) = eventually(lambda: sink.messages)
    assert got.recipients == ["friend@remote.test"]
    assert b"(POP-before-SMTP sender: ann@example.test)" in got.body
