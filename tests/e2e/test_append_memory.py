"""IMAP APPEND of large messages costs bounded memory: the literal goes to a spool.

Issue 13: a 25 MB APPEND was gathered in the framing's list of pieces, joined into the
command, sliced out by the parser and only then stored: three copies for each client
(ten at once: +700 MB at the peak on SQLite), and no byte budget.  Now a literal larger
than a command is written to a spool file as it arrives (protocols/imap_framing.py), the
store reads it in its own thread under the byte budget, as SMTP's DATA is.

The server runs in this test's process, so its RSS is ours (tests/support/memory.py).
The clients share one copy of the message and send it on imaplib's socket, since
``IMAP4.append`` would make copies of its own.
"""

from __future__ import annotations

import hashlib
import imaplib
import threading

import pytest

from mailstack.store import directory, mailboxes
from tests.support.memory import threads_at_once
from tests.support.messages import big_body, open_spool_files, spools_return_to
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "append pw"
CLIENTS = 10
SIZE = 25_000_000                      # under the default APPENDLIMIT of 25 MiB
PEAK_GROWTH = 100 * 1024 * 1024
LEFT_OVER = 40 * 1024 * 1024
IMAP_ONLY = [{"name": "imap", "protocol": "imap", "port": 0, "tls": "starttls"}]
SPOOLED = b"Subject: spooled\r\n\r\n" + b"a line long enough to move the spool to disk\r\n" * 20_000


def head_of(number: int) -> bytes:
    return f"From: <ann@example.test>\r\nSubject: big draft {number}\r\n".encode()


def login(server, address: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=120)
    client.login(address, PASSWORD)
    return client


def tagged_reply(client: imaplib.IMAP4, tag: bytes) -> bytes:
    while not (line := client.readline()).startswith(tag + b" "):
        assert line, "connection closed"
    return line.rstrip(b"\r\n")


def append(client: imaplib.IMAP4, tag: bytes, *pieces: bytes, mailbox: bytes = b"INBOX"
           ) -> bytes:
    """APPEND the concatenation of ``pieces`` (no copy of them made): the tagged reply."""
    size = sum(map(len, pieces))
    client.send(tag + b" APPEND " + mailbox + b" {%d}\r\n" % size)
    first = client.readline()
    if not first.startswith(b"+"):
        return first.rstrip(b"\r\n")
    for piece in pieces:
        client.send(piece)
    client.send(b"\r\n")
    return tagged_reply(client, tag)


def inbox_digests(server, account_id) -> list[str]:
    def ids(conn):
        folder = mailboxes.require_folder(conn, account_id, "INBOX")
        return [m.id for m in mailboxes.list_messages(conn, folder.id)]
    return [hashlib.sha256(server.db(mailboxes.get_bodies, [i])[i]).hexdigest()
            for i in server.db(ids)]


def test_ten_25_mb_appends_at_once_cost_bounded_memory(make_server):
    body = big_body(SIZE)
    server = make_server(listeners=IMAP_ONLY)
    accounts = {f"user{i}@example.test": server.add_account(f"user{i}@example.test", PASSWORD)
                for i in range(CLIENTS)}
    replies = {}
    # Logged in, with a first small APPEND each: the store's threads and connections are
    # started before the measurement, which is of the messages.
    clients = [login(server, address) for address in accounts]
    for client in clients:
        assert b"OK [APPENDUID " in append(client, b"a0", b"Subject: warm-up\r\n\r\nhi\r\n")

    def send(number, address, imap):
        replies[address] = append(imap, b"a1", head_of(number), body)
        imap.logout()

    threads = [threading.Thread(target=send, args=(n, a, c))
               for n, (a, c) in enumerate(zip(accounts, clients))]
    growth = threads_at_once(threads, f"{CLIENTS} x {SIZE // 10**6} MB by APPEND")
    assert len(replies) == CLIENTS
    assert all(b" OK [APPENDUID " in reply for reply in replies.values()), replies
    for number, account_id in enumerate(accounts.values()):
        expected = hashlib.sha256(head_of(number) + body).hexdigest()
        assert inbox_digests(server, account_id)[1:] == [expected]
    assert growth.peak < PEAK_GROWTH, growth.report
    assert growth.after < LEFT_OVER, growth.report


# --- the spool is let go on every path ------------------------------------------------------

@pytest.fixture
def imap(make_server):
    server = make_server(listeners=IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    return server


def test_a_client_gone_mid_append_leaves_no_spool_open(imap):
    baseline = open_spool_files(imap)
    client = login(imap, "ann@example.test")
    client.send(b"a1 APPEND INBOX {%d}\r\n" % (2 * len(SPOOLED)))
    assert client.readline().startswith(b"+")
    client.send(SPOOLED)
    eventually(lambda: open_spool_files(imap) > baseline, 10, "the literal spooled to disk")
    client.shutdown()                                     # mid-literal
    spools_return_to(imap, baseline)
    assert inbox_digests(imap, imap.ann) == []


def test_appends_refused_after_their_literal_leave_no_spool_open(imap):
    baseline = open_spool_files(imap)
    with login(imap, "ann@example.test") as client:
        assert b"NO [TRYCREATE]" in append(client, b"a1", SPOOLED, mailbox=b"Nowhere")
        spools_return_to(imap, baseline)
        imap.db(directory.set_quota, "ann@example.test", len(SPOOLED) // 2)
        assert b"NO [OVERQUOTA]" in append(client, b"a2", SPOOLED)
        spools_return_to(imap, baseline)
        imap.db(directory.set_quota, "ann@example.test", None)
        assert b"OK [APPENDUID " in append(client, b"a3", SPOOLED)
        spools_return_to(imap, baseline)
        assert client.noop()[0] == "OK"
    assert inbox_digests(imap, imap.ann) == [hashlib.sha256(SPOOLED).hexdigest()]


def test_a_spool_that_cannot_be_written_gives_no_and_the_session_stays_in_step(imap):
    imap.built.spool_dir.rmdir()                        # [smtp] spool_dir is gone
    with login(imap, "ann@example.test") as client:
        assert b"a1 NO [UNAVAILABLE]" in append(client, b"a1", SPOOLED)
        assert client.noop()[0] == "OK"
        imap.built.spool_dir.mkdir()
        assert b"OK [APPENDUID " in append(client, b"a2", SPOOLED)
    assert inbox_digests(imap, imap.ann) == [hashlib.sha256(SPOOLED).hexdigest()]


def test_a_large_literal_before_login_is_refused_before_a_byte_is_read(imap):
    client = imaplib.IMAP4("127.0.0.1", imap.port("imap"), timeout=10)
    client.send(b"a1 APPEND INBOX {%d}\r\n" % len(SPOOLED))
    assert client.readline().startswith(b"a1 BAD ")               # no "+": nothing is read
    client.send(b"a2 APPEND INBOX {%d+}\r\n" % len(SPOOLED) + SPOOLED + b"\r\n")
    assert tagged_reply(client, b"a2").startswith(b"a2 NO [TOOBIG]")   # counted off, dropped
    assert client.noop()[0] == "OK"
    client.logout()
