"""Large message bodies in the store, on every backend: stored exactly, read as needed.

Why these tests: a large body is written without a driver copy that outlives the INSERT
(SQLite: zeroblob and incremental blob I/O, from its spool), the connection that carried
one on PostgreSQL is not pooled again (libpq keeps its buffers that size), and the queue
runner reads a body only when it has a host to send it to (issue 13, case 5).
"""

from __future__ import annotations

import platform
from datetime import datetime, timezone

from mailstack.delivery import bounce
from mailstack.delivery.routing import store_message
from mailstack.message.spool import spooled
from mailstack.policy.outcome import Accepted
from mailstack.store import allocator, blobs, directory, mailboxes, queue
from mailstack.store.db import LARGE_BODY, large_body

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
RECEIVED = b"Received: from x ([192.0.2.1])\r\n\tby mx.example.test; Wed, 25 Nov 2026\r\n"
LARGE = (b"Subject: large\r\nUser-Agent: Probe 1.0\r\n\r\n"
         + bytes(range(256)) * (3 * LARGE_BODY // 256) + b"\r\n")


def account(db, address="ann@example.test") -> int:
    if address.startswith("ann@"):
        db.run_sync(directory.add_domain, "example.test", NOW)
    return db.run_sync(directory.add_account, address, "h", NOW)


def inbox(db, account_id):
    def read(conn):
        folder = mailboxes.require_folder(conn, account_id, "INBOX")
        ids = [m.id for m in mailboxes.list_messages(conn, folder.id)]
        return list(mailboxes.get_bodies(conn, ids).values())
    return db.run_sync(read)


def test_a_large_body_is_stored_exactly_from_bytes_and_from_its_spool(db):
    ann = account(db)
    db.run_sync(mailboxes.deliver, [ann], LARGE, NOW)
    spool = spooled(LARGE)
    message = spool.with_prefix(RECEIVED)
    facts = mailboxes.facts_of(RECEIVED + LARGE)
    info = db.run_sync(mailboxes.deliver, [ann], message, NOW, facts)[0]
    spool.close()
    assert info.size == len(RECEIVED) + len(LARGE)
    assert inbox(db, ann) == [LARGE, RECEIVED + LARGE]


def test_store_message_reads_the_spool_for_local_and_queued_copies(db):
    ann, bob = account(db), account(db, "bob@example.test")
    spool = spooled(LARGE)
    accepted = [Accepted("ann@example.test", (ann,)), Accepted("bob@example.test", (bob,)),
                Accepted("carl@remote.test", remote=True)]
    stored = db.run_sync(store_message, "s@example.test", accepted, spool, RECEIVED, NOW,
                         queue_id="Q1", hostname="mx.example.test")
    assert stored == 2
    # Final delivery adds Return-Path (RFC 5321 §4.4); the queued copy goes on without it.
    local = b"Return-Path: <s@example.test>\r\n" + RECEIVED + LARGE
    assert inbox(db, ann) == inbox(db, bob) == [local]
    (due,) = db.run_sync(queue.claim_due, NOW, NOW, 10)
    waiting = db.read_sync(queue.waiting, due.message_id)
    assert (waiting.sender, waiting.queue_id) == ("s@example.test", "Q1")
    assert db.read_sync(queue.body, due.message_id) == RECEIVED + LARGE
    quoted = db.read_sync(queue.header_start, due.message_id)
    assert quoted == (RECEIVED + LARGE)[:queue.HEADER_START]


def test_a_connection_that_carried_a_large_body_is_not_pooled_on_postgresql(db):
    def carry(conn, size):
        large_body(conn, size)
        return conn.connection.driver_connection

    if db.engine.dialect.name != "postgresql":
        return                                                  # SQLite keeps no such buffer
    small = db.run_sync(carry, LARGE_BODY - 1)
    assert not small.closed                                     # pooled again
    large = db.run_sync(carry, LARGE_BODY)
    assert large.closed
    assert db.run_sync(lambda conn: 1) == 1                     # the pool makes a new one


def test_small_bodies_take_the_prepared_insert(db):
    ann = account(db)
    assert blobs.LARGE_BODY == LARGE_BODY
    db.run_sync(mailboxes.deliver, [ann], b"Subject: small\r\n\r\nhi\r\n", NOW)
    assert inbox(db, ann) == [b"Subject: small\r\n\r\nhi\r\n"]


def test_a_bounce_quotes_at_most_the_start_of_a_large_header():
    header = b"".join(b"X-Filler-%05d: value\r\n" % i for i in range(10_000))
    quoted = bounce.header_of(header + b"\r\nbody\r\n")
    assert len(quoted) <= bounce.HEADER_LIMIT and quoted.endswith(b"value")
    assert bounce.header_of(b"Subject: s\r\n\r\nbody") == b"Subject: s"


def test_free_memory_is_given_back_where_glibc_allows_it():
    if platform.libc_ver()[0] == "glibc":
        assert allocator.return_free_memory()
