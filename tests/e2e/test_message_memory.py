"""Large messages cost bounded memory: spooled as they arrive, stored a few at a time.

Issue 13, case 5: one 25 MB message on port 25 cost 253 MB of peak memory, four in
parallel 673 MB, and 551 MB stayed.  The lines were kept in a list, joined, copied for
the Received header, decoded whole for the search text, and every session stored at
once: ten at once cost +989 MB at the peak and left +320 MB (SQLite; +1217 and +607 MB
on PostgreSQL).  Now DATA goes to a spool file, the store reads it in its own thread
under a byte budget, the search text is taken from a bounded prefix of the text parts,
and the memory a large store used goes back to the system after it (store/allocator.py).

The server runs in this test's process (tests/support/server.py), so its RSS is ours; a
thread samples it every 10 ms while the clients send (tests/support/memory.py).  The clients share one copy of the
message and send it with ``SMTP.send`` (``SMTP.data`` would make two copies per client).
"""

from __future__ import annotations

import hashlib
import smtplib
import threading

import pytest

from mailstack.store import mailboxes, queue
from mailstack.store.schema import outbound_messages
from tests.support.faults import writes_blocked
from tests.support.memory import Peak, rss, threads_at_once
from tests.support.messages import big_body, open_spool_files, spools_return_to
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e
PASSWORD = "memory pw"
CLIENTS = 10
SIZE = 25_000_000                      # under the default 25 MiB SIZE limit
PEAK_GROWTH = 100 * 1024 * 1024
LEFT_OVER = 40 * 1024 * 1024
SMTP_ONLY = [{"name": "smtp", "protocol": "smtp", "port": 0, "tls": "starttls"}]
SUBMISSION = [{"name": "submission", "protocol": "submission", "port": 0, "tls": "starttls"}]


def headers(number: int, sender: str, recipient: str) -> bytes:
    return (f"From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: big message {number}\r\n"
            .encode())


def send(client: smtplib.SMTP, sender: str, recipient: str, head: bytes, body: bytes):
    """MAIL, RCPT, DATA without smtplib's copies of the message: (code, reply) after DATA.
    ``body`` has no line starting with a dot and ends in CRLF."""
    assert client.mail(sender)[0] == 250
    assert client.rcpt(recipient)[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354
    client.send(head)
    client.send(body)
    client.send(b".\r\n")
    return client.getreply()


def stored_bodies(server, account_id):
    def read(conn):
        folder = mailboxes.require_folder(conn, account_id, "INBOX")
        return [m.id for m in mailboxes.list_messages(conn, folder.id)]
    for message_id in server.db(read):
        yield server.db(mailboxes.get_bodies, [message_id])[message_id]


def digest_without_received(stored: bytes) -> str:
    """The digest of a stored message without the trace fields we put in front: the
    Return-Path of a local copy (a queued copy has none), the Received header and port
    25's Authentication-Results (local copies)."""
    pos = stored.index(b"\r\n") + 2 if stored.startswith(b"Return-Path: <") else 0
    assert stored.startswith(b"Received: from ", pos)
    for field in (b"Received: ", b"Authentication-Results: mx.example.test;"):
        if not stored.startswith(field, pos):
            continue
        pos = stored.index(b"\r\n", pos) + 2
        while stored[pos:pos + 1] in (b" ", b"\t"):         # its folded lines
            pos = stored.index(b"\r\n", pos) + 2
    return hashlib.sha256(memoryview(stored)[pos:]).hexdigest()


@pytest.fixture(scope="module")
def body():
    return big_body()


def test_ten_25_mb_messages_at_once_on_port_25_cost_bounded_memory(make_server, body):
    server = make_server(listeners=SMTP_ONLY)
    accounts = {f"user{i}@example.test": server.add_account(f"user{i}@example.test", PASSWORD)
                for i in range(CLIENTS)}
    replies = {}

    def client(number, recipient):
        with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=120) as smtp:
            smtp.ehlo("client.remote.test")
            sender = f"sender{number}@remote.test"
            replies[recipient] = send(smtp, sender, recipient,
                                      headers(number, sender, recipient), body)

    threads = [threading.Thread(target=client, args=(n, r)) for n, r in enumerate(accounts)]
    growth = threads_at_once(threads, f"{CLIENTS} x {SIZE // 10**6} MB on port 25")
    assert all(code == 250 for code, _ in replies.values()), replies
    assert len(replies) == CLIENTS
    for number, (recipient, account_id) in enumerate(accounts.items()):
        expected = hashlib.sha256(headers(number, f"sender{number}@remote.test", recipient) + body)
        stored = list(stored_bodies(server, account_id))
        assert [digest_without_received(s) for s in stored] == [expected.hexdigest()]
    assert growth.peak < PEAK_GROWTH, growth.report
    assert growth.after < LEFT_OVER, growth.report


def test_25_mb_submission_to_a_remote_recipient_costs_bounded_memory(make_server, body):
    # Nothing answers DNS (tests/support/server.py): the runner's first attempt finds no
    # route and the message waits in the queue for the next.
    server = make_server(listeners=SUBMISSION)
    server.add_account("ann@example.test", PASSWORD)
    head = headers(0, "ann@example.test", "bob@remote.test")
    with Peak() as memory:
        with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=120) as smtp:
            smtp.starttls(context=server.context)
            smtp.login("ann@example.test", PASSWORD)
            code, _ = send(smtp, "ann@example.test", "bob@remote.test", head, body)
        eventually(lambda: [r for r in server.db(queue.listing) if r.attempts], 20,
                   "the queue runner's first attempt")
    after = rss()
    report = (f"{SIZE // 10**6} MB by submission: peak +{(memory.peak - memory.before) >> 20} MB, "
              f"after +{(after - memory.before) >> 20} MB")
    print(report)
    assert code == 250
    rows = server.db(queue.listing)
    assert [(r.recipient, r.status) for r in rows] == [("bob@remote.test", "queued")]
    stored = server.db(lambda c: bytes(c.execute(outbound_messages.select()).first().body))
    assert digest_without_received(stored) == hashlib.sha256(head + body).hexdigest()
    assert memory.peak - memory.before < PEAK_GROWTH, report
    assert after - memory.before < LEFT_OVER, report


# --- the spool is let go on every path ------------------------------------------------------

SPOOLED = b"Subject: spooled\r\n\r\n" + b"a line long enough to move the spool to disk\r\n" * 20_000


@pytest.fixture
def mx(make_server):
    server = make_server(listeners=SMTP_ONLY, smtp={"max_message_size": 2 * len(SPOOLED)})
    server.ann = server.add_account("ann@example.test", PASSWORD)
    return server


def start_data(client: smtplib.SMTP) -> None:
    assert client.mail("s@remote.test")[0] == 250
    assert client.rcpt("ann@example.test")[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "starttls"])
def test_a_client_gone_mid_data_leaves_no_spool_open(mx, tls):
    baseline = open_spool_files(mx)
    client = smtplib.SMTP("127.0.0.1", mx.port("smtp"), timeout=10)
    client.ehlo("client.remote.test")
    if tls:
        client.starttls(context=mx.context)
        client.ehlo("client.remote.test")
    start_data(client)
    client.send(SPOOLED)
    eventually(lambda: open_spool_files(mx) > baseline, 10, "the spool on disk")
    client.close()                                        # mid-DATA, no final dot
    spools_return_to(mx, baseline)


def test_refused_messages_leave_no_spool_open(mx):
    baseline = open_spool_files(mx)
    with smtplib.SMTP("127.0.0.1", mx.port("smtp"), timeout=10) as client:
        client.ehlo("client.remote.test")
        start_data(client)
        client.send(SPOOLED * 3 + b".\r\n")                # over max_message_size
        assert client.getreply()[0] == 552
        spools_return_to(mx, baseline)
        start_data(client)
        client.send(SPOOLED + b"x" * 70_000 + b"\r\n.\r\n")  # an over-long line
        assert client.getreply()[0] == 552
        spools_return_to(mx, baseline)
        assert client.noop()[0] == 250                     # the session is still in step


def test_a_store_outage_gives_451_and_leaves_no_spool_open(mx, db_url):
    baseline = open_spool_files(mx)
    with smtplib.SMTP("127.0.0.1", mx.port("smtp"), timeout=10) as client:
        client.ehlo("client.remote.test")
        with writes_blocked(db_url):
            start_data(client)
            client.send(SPOOLED + b".\r\n")
            code, reply = client.getreply()
        assert (code, reply[:5]) == (451, b"4.3.0")
        spools_return_to(mx, baseline)
        start_data(client)
        client.send(SPOOLED + b".\r\n")
        assert client.getreply()[0] == 250
    spools_return_to(mx, baseline)
    assert [digest_without_received(s) for s in stored_bodies(mx, mx.ann)] == [
        hashlib.sha256(SPOOLED).hexdigest()]


def test_a_spool_that_cannot_be_written_gives_451_and_the_session_stays_in_step(
        mx):
    mx.built.spool_dir.rmdir()                        # [smtp] spool_dir is gone
    with smtplib.SMTP("127.0.0.1", mx.port("smtp"), timeout=10) as client:
        client.ehlo("client.remote.test")
        start_data(client)
        client.send(SPOOLED + b".\r\n")
        code, reply = client.getreply()
        assert (code, reply[:5]) == (451, b"4.3.0")
        assert client.noop()[0] == 250
        mx.built.spool_dir.mkdir()
        start_data(client)
        client.send(SPOOLED + b".\r\n")
        assert client.getreply()[0] == 250
    assert len(list(stored_bodies(mx, mx.ann))) == 1
