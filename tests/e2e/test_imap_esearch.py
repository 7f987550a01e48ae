"""ESEARCH (RFC 4731): SEARCH RETURN (MIN MAX COUNT ALL) answered by one ESEARCH line
tagged with the command's tag, over the running server with imaplib."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_imap_condstore import box, modseqs, ok  # noqa: F401  (the fixture)
from tests.e2e.test_imap_extensions import command, connect

pytestmark = pytest.mark.e2e


def esearch(client, text: str) -> bytes:
    lines = ok(client, text)
    found = [line for line in lines if line.startswith(b"* ESEARCH")]
    assert len(found) == 1, lines
    return found[0]


def test_capability_and_every_return_option(box):
    client = connect(box)
    assert "ESEARCH" in client.capabilities
    ok(client, "SELECT INBOX")
    ok(client, "STORE 2,3,5 +FLAGS (\\Flagged)")
    line = esearch(client, "SEARCH RETURN (MIN MAX COUNT ALL) FLAGGED")
    assert re.fullmatch(rb'\* ESEARCH \(TAG "[A-Z]+\d+"\) MIN 2 MAX 5 COUNT 3 ALL 2:3,5', line)
    assert esearch(client, "SEARCH RETURN () FLAGGED").endswith(b") ALL 2:3,5")
    assert esearch(client, "SEARCH RETURN (COUNT) FLAGGED").endswith(b") COUNT 3")
    uids = esearch(client, "UID SEARCH RETURN (MIN MAX) FLAGGED")
    assert b") UID MIN " in uids and b" MAX " in uids
    nothing = esearch(client, "SEARCH RETURN (MIN MAX COUNT ALL) DELETED")
    assert nothing.endswith(b") COUNT 0")           # no MIN, MAX or ALL for no match
    assert ok(client, "SEARCH FLAGGED")[-1] == b"* SEARCH 2 3 5"   # plain SEARCH unchanged
    client.logout()


def test_modseq_is_that_of_the_messages_returned(box):
    client = connect(box)
    ok(client, "SELECT INBOX")
    ok(client, "STORE 1:3 +FLAGS (\\Seen)")
    current = modseqs(client)
    low = esearch(client, "SEARCH RETURN (MIN) 1:3 MODSEQ 1")
    assert low.endswith(b") MIN 1 MODSEQ %d" % current[1])
    every = esearch(client, "SEARCH RETURN (ALL) 1:3 MODSEQ 1")
    assert every.endswith(b") ALL 1:3 MODSEQ %d" % max(current[u] for u in (1, 2, 3)))
    client.logout()


def test_an_unknown_return_option_is_bad(box):
    client = connect(box)
    ok(client, "SELECT INBOX")
    status, _ = command(client, "SEARCH RETURN (SAVE) ALL")   # SEARCHRES is not offered
    assert status.startswith(b"BAD")
    client.logout()
