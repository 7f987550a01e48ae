"""Mail with a NUL byte, undecodable headers and invalid UTF-8 is stored, not deferred for ever.

Issue 22: PostgreSQL refuses NUL in text columns, so every attempt to deliver such a message
ended in 451 and the sender retried for days.  The message keeps its bytes exactly; only
the text derived from it for SEARCH and the logs drops NUL and replaces what UTF-8 cannot
encode (schema.CleanText).  Each test runs on SQLite and, in CI, on PostgreSQL.
"""

from __future__ import annotations

import imaplib
import smtplib

import pytest

from mailstack.store import logins, mailboxes, rejections
from tests.e2e.test_submission import client as submission_client

pytestmark = pytest.mark.e2e
PASSWORD = "nul byte tester pw"
LISTENERS = [
    {"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"},
    {"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"},
    {"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"},
]

IN_BODY = b"From: a@remote.test\r\nSubject: nul in body\r\n\r\nbefore\x00after zebra\r\n"
IN_HEADER = b"From: a@remote.test\r\nSubject: nul\x00in header quokka\r\n\r\nplain body\r\n"
IN_PART = (b"From: a@remote.test\r\nSubject: nul in part\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\n"
           b"Content-Type: text/plain\r\n\r\nfirst part\r\n--b1\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nsecond\x00part wombat\r\n--b1--\r\n")
EIGHT_BIT = (b"From: =?utf-8?b?/w==?= <a@remote.test>\r\nSubject: caf\xe9 \xff\xfe numbat\r\n"
             b"Content-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: 8bit\r\n\r\nnot utf-8: \xc3\x28 \xed\xa0\x80 \x01\x1b\r\n")
NEEDLES = {IN_BODY: "zebra", IN_HEADER: "quokka", IN_PART: "wombat", EIGHT_BIT: "numbat"}


@pytest.fixture
def mx(make_server):
    server = make_server(listeners=LISTENERS)
    server.alice = server.add_account("alice@example.test", PASSWORD)
    server.bob = server.add_account("bob@example.test", PASSWORD)
    return server


def stored(server, account_id) -> list[bytes]:
    def read(conn):
        folder = mailboxes.require_folder(conn, account_id, "INBOX")
        listed = mailboxes.list_messages(conn, folder.id)
        bodies = mailboxes.get_bodies(conn, [m.id for m in listed])
        return [bodies[m.id] for m in listed]
    return server.db(read)


def alice(server) -> imaplib.IMAP4_SSL:
    client = imaplib.IMAP4_SSL("127.0.0.1", server.port("imaps"), ssl_context=server.context,
                               timeout=10)
    client.login("alice@example.test", PASSWORD)
    return client


def imap_checks(server, sent: list[bytes]):
    """BODY[] gives back the bytes as stored; SEARCH finds each by a word in it."""
    client = alice(server)
    client.select("INBOX")
    for seq, message in enumerate(sent, 1):
        typ, data = client.fetch(str(seq), "(BODY.PEEK[] BODYSTRUCTURE ENVELOPE)")
        assert typ == "OK" and message.split(b"\r\n\r\n", 1)[1] in data[0][1]
        where = "TEXT" if message is not IN_HEADER else "SUBJECT"
        typ, found = client.search("UTF-8", where, NEEDLES[message])
        assert typ == "OK" and found == [str(seq).encode()], (NEEDLES[message], found)
    client.logout()


def test_port_25_stores_nul_in_body_header_and_part_and_invalid_utf8_exactly(mx):
    sent = [IN_BODY, IN_HEADER, IN_PART, EIGHT_BIT]
    with smtplib.SMTP("127.0.0.1", mx.port("smtp"), timeout=10) as smtp:
        smtp.ehlo("client.remote.test")
        for message in sent:
            assert smtp.sendmail("a@remote.test", ["alice@example.test"], message) == {}
    bodies = stored(mx, mx.alice)
    for body, message in zip(bodies, sent):
        assert body.endswith(message)           # after our Received header, byte for byte
    imap_checks(mx, sent)


def test_submission_sends_a_message_with_nul_to_a_local_account(mx):
    with submission_client(mx, "submission") as c:
        c.login("bob@example.test", PASSWORD)
        message = IN_PART.replace(b"a@remote.test", b"bob@example.test")
        assert c.sendmail("bob@example.test", ["alice@example.test"], message) == {}
    (body,) = stored(mx, mx.alice)
    assert body.endswith(message)


def test_imap_append_of_a_message_with_nul_is_stored_and_fetched_exactly(mx):
    client = alice(mx)
    for message in (IN_BODY, IN_HEADER, IN_PART, EIGHT_BIT):
        typ, data = client.append("INBOX", None, None, message)
        assert typ == "OK" and b"APPENDUID" in data[0]
    client.select("INBOX")
    typ, data = client.fetch("1:4", "(BODY.PEEK[])")
    fetched = [part[1] for part in data if isinstance(part, tuple)]
    # imaplib's append turns bare LF into CRLF; these messages have none
    assert fetched == [IN_BODY, IN_HEADER, IN_PART, EIGHT_BIT]
    typ, data = client.fetch("3", "(BODY.PEEK[2])")
    assert data[0][1] == b"second\x00part wombat"
    client.logout()
    imap_checks(mx, [IN_BODY, IN_HEADER, IN_PART, EIGHT_BIT])


def test_client_supplied_text_with_nul_and_surrogates_is_recorded_not_refused(mx):
    """The other text columns fed by clients: a login event's user name and client name,
    a rejection's HELO, sender and reply (schema.CleanText keeps the write from failing)."""
    at = mx.now()
    mx.db(logins.record, logins.LoginEvent(
        at, "evil\x00user\udcff", "imap", "127.0.0.9", True, "LOGIN", False,
        reason="bad\x00password", client_name="Mail\x00Client \udc80"))
    mx.db(rejections.record, rejections.Rejection(
        "NULREF1", at, "s1", "smtp", "rcpt", "test", "127.0.0.9", "ptr\x00.test",
        "helo\x00\udcff", "from\x00@remote.test", "to@example.test", "550 nope\x00"))
    events = mx.db(lambda conn: logins.recent(conn, client_ip="127.0.0.9", since=at))
    assert [(e.username, e.client_name) for e in events] == [("eviluser\ufffd", "MailClient \ufffd")]
    with alice(mx) as client:                   # and the database serves on
        assert client.select("INBOX")[0] == "OK"
