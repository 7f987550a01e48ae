"""SEARCH and UID SEARCH end to end: imaplib over implicit TLS against the SQL search."""

from __future__ import annotations

import imaplib

import pytest

from mailstack.store import mailboxes
from tests.e2e.test_imap import PASSWORD, implicit

pytestmark = pytest.mark.e2e
IMAPS = {"listeners": [{"name": "imaps", "protocol": "imap", "port": 0, "tls": "implicit"}]}


def message(subject: str, sender: str, body: str, date="Tue, 24 Nov 2026 10:00:00 +0000"):
    return (f"From: {sender}\r\nTo: ann@example.test\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\n\r\n{body}\r\n").encode()


QUARTERLY = message("Quarterly report", "Alice <alice@a.test>", "the numbers are attached")
CAFE = message("=?utf-8?q?Caf=C3=A9_du_jour?=", "bob@b.test", "menu: soup",
               date="Wed, 25 Nov 2026 08:00:00 +0900")
LUNCH = message("lunch", "carol@c.test", "bring the QUARTERLY numbers " + "x" * 400)


@pytest.fixture
def imap(make_server):
    server = make_server(**IMAPS)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    client = implicit(server)
    for body, flags in ((QUARTERLY, "(\\Seen)"), (CAFE, "($Label1)"), (LUNCH, "()")):
        assert client.append("INBOX", flags, None, body)[0] == "OK"
    client.logout()
    return server


def search(client, *keys, charset=None, uid=False):
    if uid:                                 # imaplib adds CHARSET to SEARCH, not to UID SEARCH
        typ, data = client.uid("SEARCH", *(("CHARSET", charset) if charset else ()), *keys)
    else:
        typ, data = client.search(charset, *keys)
    assert typ == "OK", data
    return [int(n) for n in data[0].split()]


def test_search_keys_answer_with_sequence_numbers_and_uids(imap):
    client = implicit(imap)
    client.select("INBOX")
    assert search(client, "ALL") == [1, 2, 3]
    assert search(client, "SEEN") == [1] and search(client, "UNSEEN") == [2, 3]
    assert search(client, "KEYWORD", "$Label1") == [2]
    assert search(client, "SUBJECT", '"quarterly REPORT"') == [1]
    assert search(client, "FROM", "alice") == [1]
    assert search(client, "TEXT", "quarterly") == [1, 3]
    assert search(client, "BODY", "quarterly") == [3]
    assert search(client, "NOT", "(OR SEEN (LARGER 300 UNKEYWORD $Label1))") == [2]
    assert search(client, "OR", "FROM", "bob", "(SEEN NOT TEXT numbers)") == [2]
    assert search(client, "OR", "FROM", "bob", "(SEEN NOT TEXT soup)") == [1, 2]
    # The date as written, in the Date header's own zone (RFC 3501 §6.4.4): 25 Nov 08:00
    # +0900 was sent on the 25th, although it was still the 24th in UTC.
    assert search(client, "SENTON", "24-Nov-2026") == [1, 3]
    assert search(client, "SENTON", "25-Nov-2026") == [2]
    assert search(client, "SENTBEFORE", "25-Nov-2026") == [1, 3]
    assert search(client, "2:*", "UNKEYWORD", "$Label1") == [3]
    assert search(client, "UID", "2:*", uid=True) == [2, 3]
    assert search(client, "*", uid=True) == [3]
    client.store("1", "+FLAGS", "(\\Deleted)")
    client.expunge()
    assert search(client, "SUBJECT", "lunch") == [2]
    assert search(client, "SUBJECT", "lunch", uid=True) == [3]
    client.logout()


def test_new_mail_is_announced_after_a_search_and_searched_from_then_on(imap):
    """RFC 3501 §5.2, §7.4.1: the SEARCH answers from the numbers the client knows; the new
    message is announced before its tagged OK, and the next command sees it."""
    client = implicit(imap)
    client.select("INBOX")
    imap.db(mailboxes.deliver, [imap.ann], message("late", "dan@d.test", "hi"), imap.now())
    assert search(client, "ALL") == [1, 2, 3]
    assert client.untagged_responses.pop("EXISTS")[-1] == b"4"
    assert search(client, "UID", "1:*", uid=True) == [1, 2, 3, 4]
    assert search(client, "SUBJECT", "late") == [4]
    client.logout()


# Twisted's arg_searchkeys never asks for a literal: "SUBJECT {5}" was answered at once as
# SUBJECT "" (every message); imap_search.arg_searchkeys reads the literal.
def test_charset_utf8_needle_sent_as_a_literal_finds_the_rfc2047_subject(imap):
    client = implicit(imap)
    client.select("INBOX")
    client.literal = "CAFÉ".encode()
    assert search(client, "SUBJECT", charset="UTF-8") == [2]
    client.literal = "café du".encode()
    assert search(client, "SUBJECT", charset="UTF-8", uid=True) == [2]
    assert search(client, "SUBJECT", '"caf"', charset="US-ASCII") == [2]
    client.logout()


def test_unknown_charset_is_no_badcharset_and_bad_keys_are_bad(imap):
    client = implicit(imap)
    client.select("INBOX")
    typ, data = client.search("ISO-8859-1", "ALL")
    assert typ == "NO" and data[0].startswith(b"[BADCHARSET (US-ASCII UTF-8)]")
    for keys in (("FOO",), ("ON", "31-Feb-2026"), ("UID", "0"), ("OR", "SEEN")):
        with pytest.raises(imaplib.IMAP4.error):
            client.search(None, *keys)
    assert search(client, "SEEN") == [1]                                   # still in business
    client.logout()
