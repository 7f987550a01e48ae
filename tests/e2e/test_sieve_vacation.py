"""Sieve vacation at final delivery on port 25 (issue 19, item 2; RFC 5230, RFC 3834).

The script is installed with ``mailstack sieve put --activate``; mail comes over TCP
with smtplib; the reply is read from the outbound queue (envelope and message, as the
queue runner would send it) and the message from the customer's INBOX over IMAP.  The
server's business clock is moved for ``:days``.  SQLite and PostgreSQL.
"""

from __future__ import annotations

import email

import pytest
from mailstack.store import directory
from tests.support.sieve_mail import ANN, REMOTE, install, mailbox, message, queued, send, start

pytestmark = pytest.mark.e2e
AWAY = ('require "vacation";\n'
        'vacation :days 3 :subject "Away" :handle "summer" "I am away until Monday.";\n')


@pytest.fixture
def mx(make_server, db_url, tmp_path):
    server = start(make_server, db_url, tmp_path)
    install(server, ANN, AWAY)
    return server


def replies(server) -> list[tuple[list[str], email.message.Message, bytes]]:
    """(recipients, message, octets) of each queued vacation reply (null sender)."""
    return [(rcpts, email.message_from_bytes(body), body)
            for sender, rcpts, body in queued(server) if sender == ""]


def test_the_reply_is_queued_from_the_null_sender_signed_and_threaded(mx):
    mx.desk.ok("dkim", "keygen", "example.test", "--at", mx.now().isoformat())
    assert send(mx, message(subject="Lunch?", message_id="<lunch@remote.test>"))[0] == 250
    assert [m["Subject"] for m, _ in mailbox(mx, ANN)] == ["Lunch?"]
    ((rcpts, reply, octets),) = replies(mx)
    assert rcpts == [REMOTE]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["In-Reply-To"] == "<lunch@remote.test>"
    assert "<lunch@remote.test>" in reply["References"]
    assert reply["Subject"] == "Away" and reply["To"].endswith(REMOTE)
    assert ANN in reply["From"]
    assert "I am away until Monday." in reply.get_payload(decode=True).decode()
    assert octets.startswith(b"DKIM-Signature:") and b"d=example.test" in octets
    from sqlalchemy import select

    from mailstack.store.schema import vacation_replies     # here: the table is new
    recorded = mx.db(lambda conn: conn.execute(select(vacation_replies.c.sender)).all())
    assert recorded == [(REMOTE,)]


def test_a_sender_is_answered_once_per_days(mx):
    send(mx, message(subject="one"))
    send(mx, message(subject="two"))
    assert len(replies(mx)) == 1
    send(mx, message(subject="other sender", sender="dan@remote.test"),
         mail_from="dan@remote.test")
    assert [r for r, _, _ in replies(mx)] == [[REMOTE], ["dan@remote.test"]]
    mx.advance(3 * 86400 - 60)
    send(mx, message(subject="three"))
    assert len(replies(mx)) == 2
    mx.advance(120)
    send(mx, message(subject="four"))
    assert [r for r, _, _ in replies(mx)][-1] == [REMOTE] and len(replies(mx)) == 3
    assert len(mailbox(mx, ANN)) == 5                       # every message was kept


@pytest.mark.parametrize("extra, mail_from, to", [
    ("List-Id: <friends.lists.remote.test>\r\n", REMOTE, ANN),
    ("Precedence: bulk\r\n", REMOTE, ANN),
    ("Precedence: list\r\n", REMOTE, ANN),
    ("Auto-Submitted: auto-generated\r\n", REMOTE, ANN),
    ("Auto-Submitted: auto-replied\r\n", REMOTE, ANN),
    ("", "", ANN),                                          # the null sender: a bounce
    ("", "owner-friends@remote.test", ANN),
    ("", "friends-request@remote.test", ANN),
    ("", "MAILER-DAEMON@remote.test", ANN),
    ("", REMOTE, "someone@remote.test"),                    # Bcc: not addressed to ann
])
def test_no_reply_to_lists_robots_bounces_or_mail_not_addressed_to_the_account(
        mx, extra, mail_from, to):
    assert send(mx, message(extra=extra, to=to), mail_from=mail_from)[0] == 250
    assert len(mailbox(mx, ANN)) == 1 and replies(mx) == []
    send(mx, message(sender="dan@remote.test"), mail_from="dan@remote.test")   # a person
    assert [r for r, _, _ in replies(mx)] == [["dan@remote.test"]]


def test_auto_submitted_no_is_answered(mx):
    send(mx, message(extra="Auto-Submitted: no\r\nPrecedence: first-class\r\n"))
    assert len(replies(mx)) == 1


def test_mail_to_an_alias_is_answered_from_the_alias(mx):
    mx.db(directory.add_alias, "info@example.test", ANN)
    send(mx, message(to="Info <info@example.test>"), rcpts=("info@example.test",))
    ((rcpts, reply, _),) = replies(mx)
    assert rcpts == [REMOTE] and "info@example.test" in reply["From"]


def test_addresses_names_more_of_the_account_s_addresses(mx):
    install(mx, ANN, 'require "vacation";\n'
                     'vacation :addresses ["ann.smith@example.test"] "Away.";\n')
    send(mx, message(to="ann.smith@example.test"))                 # Bcc to ann, To: the name
    send(mx, message(to="nobody@example.test", sender="dan@remote.test"),
         mail_from="dan@remote.test")
    assert [r for r, _, _ in replies(mx)] == [[REMOTE]]
