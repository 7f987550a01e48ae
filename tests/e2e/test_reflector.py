"""check@<domain> answers authenticated senders, in their own INBOX, with how their mail
program sent the message; unauthenticated mail to it on port 25 is refused."""

from __future__ import annotations

import smtplib

import pytest

from mailstack.store import mailboxes
from tests.e2e.test_pop_before_smtp import POP3From

pytestmark = pytest.mark.e2e
PW = "reflector-pw"
LISTENERS = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
             {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
             {"name": "submissions", "protocol": "submission", "port": 0, "tls": "implicit"},
             {"name": "pop3", "protocol": "pop3", "port": 0, "tls": "starttls"}]


@pytest.fixture
def srv(make_server):
    server = make_server(listeners=LISTENERS, pop_before_smtp={"enabled": True})
    server.ann = server.add_account("ann@example.test", PW)
    return server


def answers(server):
    bodies = server.db(lambda c: list(mailboxes.get_bodies(c, [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, server.ann, "INBOX").id)]).values()))
    return [b.decode() for b in bodies if b"Your mail settings check" in b]


def test_a_modern_client_is_told_it_is_ready(srv):
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), context=srv.context) as c:
        c.login("ann@example.test", PW)
        c.sendmail("ann@example.test", ["check@example.test"], b"Subject: test\r\n\r\nx\r\n")
    (answer,) = answers(srv)
    assert "Encryption:  TLSv1.3" in answer or "Encryption:  TLSv1.2" in answer
    assert "Sent as:     SMTP authentication" in answer and "Password:    sent encrypted" in answer
    assert "ready for the change" in answer


def test_a_legacy_client_is_told_what_to_fix(srv):
    pop = POP3From("127.0.0.1", srv.port("pop3"), "127.0.0.51")      # cleartext POP login
    pop.user("ann@example.test")
    pop.pass_(PW)
    pop.quit()
    with smtplib.SMTP("127.0.0.1", srv.port("submission"), source_address=("127.0.0.51", 0)) as c:
        c.sendmail("ann@example.test", ["check@example.test"], b"Subject: test\r\n\r\nx\r\n")
    (answer,) = answers(srv)
    assert "POP before SMTP (no authentication)" in answer
    assert "Password:    sent WITHOUT encryption" in answer and "Encryption:  none" in answer
    assert "Turn on SMTP authentication" in answer and "turn on SSL/TLS" in answer


def test_unauthenticated_mail_to_the_reflector_on_port_25_is_refused(srv):
    with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as c:
        c.ehlo("spammer.test")
        c.mail("forged@victim.test")
        code, text = c.rcpt("check@example.test")
    assert code == 550 and b"5.1.1" in text
    assert answers(srv) == []
