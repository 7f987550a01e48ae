"""The outbound queue store on every backend: enqueue, claims with leases, outcomes, CLI ops.

Why these tests: the queue is what makes a 250 durable for remote recipients, and two
runners on one database must never deliver the same recipient twice.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from mailstack.store import directory, migrations, queue
from mailstack.store.db import Database, make_engine
from mailstack.store.errors import NotFound
from tests.support import databases
from twisted.internet import reactor

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=10)
BODY = b"Subject: hi\r\n\r\nhello\r\n"


def claim(db, at=NOW, limit=100):
    return db.run_sync(queue.claim_due, at, at + LEASE, limit)


def by_recipient(db, queue_id=None):
    return {r.recipient: r for r in db.run_sync(queue.listing, queue_id)}


def test_enqueue_keeps_one_row_per_distinct_recipient_with_its_domain(db):
    message_id = db.run_sync(queue.enqueue, "", ["a@remote.test", "b@other.test", "a@remote.test"],
                             BODY, NOW, queue_id="Q1", client_ip="192.0.2.1")
    rows = by_recipient(db)
    assert sorted(rows) == ["a@remote.test", "b@other.test"]
    assert {r.status for r in rows.values()} == {"queued"}
    assert all(r.sender == "" and r.queue_id == "Q1" and r.attempts == 0 for r in rows.values())
    stored = db.read_sync(queue.message, message_id)
    assert stored.body == BODY and stored.sender == "" and stored.created_at == NOW
    assert {(d.recipient, d.domain) for d in claim(db)} == {
        ("a@remote.test", "remote.test"), ("b@other.test", "other.test")}


def test_a_claim_is_exclusive_until_its_lease_expires(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test"], BODY, NOW, queue_id="Q1")
    assert claim(db, NOW - timedelta(seconds=1)) == []          # not yet due
    first = claim(db)
    assert [d.recipient for d in first] == ["a@remote.test"]
    assert by_recipient(db)["a@remote.test"].status == "delivering"
    assert claim(db, NOW + LEASE - timedelta(seconds=1)) == []  # another runner: held
    # The runner that claimed it crashed: once the lease is over, the row is taken over.
    again = claim(db, NOW + LEASE + timedelta(seconds=1))
    assert [d.id for d in again] == [first[0].id]


def test_claims_honour_the_limit_oldest_first(db):
    db.run_sync(queue.enqueue, "s@example.test", ["late@remote.test"], BODY,
                NOW + timedelta(seconds=5), queue_id="Q2")
    db.run_sync(queue.enqueue, "s@example.test", ["early@remote.test"], BODY, NOW, queue_id="Q1")
    later = NOW + timedelta(minutes=1)
    assert [d.recipient for d in claim(db, later, limit=1)] == ["early@remote.test"]
    assert [d.recipient for d in claim(db, later, limit=1)] == ["late@remote.test"]


def test_two_runners_claiming_at_once_never_share_a_recipient(db, db_url):
    recipients = [f"r{i}@remote.test" for i in range(4)]
    db.run_sync(queue.enqueue, "s@example.test", recipients, BODY, NOW, queue_id="Q1")
    other = Database(db_url, reactor=reactor, threads=2)   # a second process, its own engine
    claimed, release, b_done = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def runner_a(conn):
        results["a"] = queue.claim_due(conn, NOW, NOW + LEASE, 2)
        claimed.set()
        assert release.wait(10)           # keep the transaction (and its locks) open

    def runner_b():
        results["b"] = other.run_sync(queue.claim_due, NOW, NOW + LEASE, 10)
        b_done.set()

    a = threading.Thread(target=db.run_sync, args=(runner_a,))
    b = threading.Thread(target=runner_b)
    try:
        a.start()
        assert claimed.wait(10)
        b.start()
        if db.engine.dialect.name == "postgresql":
            # SKIP LOCKED: the second runner takes the other rows without waiting.
            assert b_done.wait(5)
        release.set()
        a.join(10)
        b.join(10)
    finally:
        release.set()
        other.stop()
    ids_a = {d.id for d in results["a"]}
    ids_b = {d.id for d in results["b"]}
    assert len(ids_a) == 2 and not ids_a & ids_b
    assert {d.recipient for d in results["a"] + results["b"]} == set(recipients)


def test_retry_counts_the_attempt_and_waits_until_the_next_time(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test"], BODY, NOW, queue_id="Q1")
    (item,) = claim(db)
    next_at = NOW + timedelta(minutes=5)
    db.run_sync(queue.retry, item.id, "451 4.3.0 busy", NOW, next_at)
    row = by_recipient(db)["a@remote.test"]
    assert (row.status, row.attempts, row.last_reply) == ("queued", 1, "451 4.3.0 busy")
    assert row.next_attempt_at == next_at
    assert claim(db, next_at - timedelta(seconds=1)) == []
    (again,) = claim(db, next_at)
    assert again.attempts == 1


def test_message_is_forgotten_once_every_recipient_is_final(db):
    message_id = db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@remote.test"],
                             BODY, NOW, queue_id="Q1")
    first, second = claim(db)
    db.run_sync(queue.delivered, first.id, "250 ok", NOW)
    rows = by_recipient(db)
    assert rows[first.recipient].status == "delivered"
    assert rows[second.recipient].status == "delivering"
    assert db.read_sync(queue.message, message_id) is not None     # still needed
    db.run_sync(queue.bounced, second.id, "550 5.1.1 no such user", NOW)
    assert db.run_sync(queue.listing) == []
    assert db.read_sync(queue.message, message_id) is None


def test_flush_makes_waiting_recipients_due_now_and_leaves_claims_alone(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@remote.test"], BODY, NOW,
                queue_id="Q1")
    first, _ = claim(db)
    db.run_sync(queue.retry, first.id, "451 busy", NOW, NOW + timedelta(hours=4))
    later = NOW + timedelta(minutes=1)
    assert db.run_sync(queue.flush, later) == 1                      # the claimed row untouched
    assert by_recipient(db)[first.recipient].next_attempt_at == later
    assert [d.id for d in claim(db, later)] == [first.id]


def test_remove_deletes_a_message_by_queue_id_and_refuses_unknown_ids(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test"], BODY, NOW, queue_id="Q1")
    db.run_sync(queue.enqueue, "s@example.test", ["b@remote.test"], BODY, NOW, queue_id="Q2")
    assert list(by_recipient(db, "Q1")) == ["a@remote.test"]
    assert db.run_sync(queue.remove, "Q1") == 1
    assert list(by_recipient(db)) == ["b@remote.test"]
    with pytest.raises(NotFound):
        db.run_sync(queue.remove, "Q1")


# --- the operator's controls (postsuper): hold, release, requeue, drop ----------------------------

def test_a_held_recipient_is_never_claimed_until_released(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@other.test"], BODY, NOW,
                queue_id="Q1")
    assert db.run_sync(queue.hold, NOW, "Q1", "remote.test") == 1
    assert by_recipient(db)["a@remote.test"].status == "held"
    assert [d.recipient for d in claim(db)] == ["b@other.test"]
    later = NOW + timedelta(days=30)                                # b's lease is over
    assert [d.recipient for d in claim(db, later)] == ["b@other.test"]
    assert db.run_sync(queue.release, NOW, None, None) == 1
    assert [d.recipient for d in claim(db)] == ["a@remote.test"]


def test_a_hold_during_delivery_lets_the_attempt_finish_and_keeps_a_retry_held(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test"], BODY, NOW, queue_id="Q1")
    (item,) = claim(db)
    assert db.run_sync(queue.hold, NOW, "Q1") == 1
    # Released while the runner still holds its lease: back to that runner, not claimable.
    assert db.run_sync(queue.release, NOW, "Q1") == 1
    assert by_recipient(db)["a@remote.test"].status == "delivering"
    assert claim(db) == []
    db.run_sync(queue.hold, NOW, "Q1")
    db.run_sync(queue.retry, item.id, "451 busy", NOW, NOW)         # the attempt's outcome
    row = by_recipient(db)["a@remote.test"]
    assert (row.status, row.attempts) == ("held", 1)
    assert claim(db, NOW + timedelta(hours=1)) == []


def test_a_held_recipient_keeps_its_message_when_the_others_are_done(db):
    message_id = db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@other.test"],
                             BODY, NOW, queue_id="Q1")
    db.run_sync(queue.hold, NOW, "Q1", "other.test")
    (item,) = claim(db)
    db.run_sync(queue.delivered, item.id, "250 ok", NOW)
    assert db.read_sync(queue.message, message_id) is not None
    assert by_recipient(db)["b@other.test"].status == "held"


def test_requeue_makes_waiting_recipients_due_now_with_their_attempts(db):
    db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@remote.test"], BODY, NOW,
                queue_id="Q1")
    first, second = claim(db)
    db.run_sync(queue.retry, first.id, "451 busy", NOW, NOW + timedelta(hours=4))
    db.run_sync(queue.hold, NOW, "Q1")           # both: one waiting, one in flight
    db.run_sync(queue.release, NOW, "Q1")
    later = NOW + timedelta(minutes=1)
    assert db.run_sync(queue.requeue, later, "Q1") == 1   # the one in flight is its runner's
    assert [(d.id, d.attempts) for d in claim(db, later)] == [(first.id, 1)]
    db.run_sync(queue.hold, later, "Q1")
    assert db.run_sync(queue.requeue, later, None) == 0   # held ones stay held


def test_drop_by_domain_keeps_the_other_recipients_and_forgets_emptied_messages(db):
    first = db.run_sync(queue.enqueue, "s@example.test", ["a@remote.test", "b@other.test"], BODY,
                        NOW, queue_id="Q1")
    second = db.run_sync(queue.enqueue, "s@example.test", ["c@other.test"], BODY, NOW,
                         queue_id="Q2")
    assert db.run_sync(queue.drop, None, "other.test") == 2
    assert list(by_recipient(db)) == ["a@remote.test"]
    assert db.read_sync(queue.message, first) is not None
    assert db.read_sync(queue.message, second) is None
    assert db.run_sync(queue.drop, None, None) == 1
    assert db.run_sync(queue.listing) == [] and db.read_sync(queue.message, first) is None
    for control in (queue.hold, queue.release, queue.requeue):
        with pytest.raises(NotFound):
            db.run_sync(control, NOW, "Q1")
    with pytest.raises(NotFound):
        db.run_sync(queue.drop, "Q1")


@pytest.mark.parametrize("backend", databases.backends())
def test_upgrading_keeps_existing_data(backend, tmp_path):
    """Rows written under an old schema (raw SQL: today's code expects today's columns)
    survive every later migration, 0009–0011 fill the SEARCH headers and text of old messages,
    0012 spells their system flags one way, and 0010–0012 downgrade and upgrade again
    without losing them."""
    with databases.fresh_database(backend, tmp_path, "0003") as url:
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("INSERT INTO domains (id, name, created_at) "
                                     "VALUES (1, 'example.test', '2026-11-25 12:00:00')")
                conn.exec_driver_sql(
                    "INSERT INTO accounts (id, domain_id, address, password_hash,"
                    " may_send_as_any, enabled, created_at) VALUES (1, 1, 'ann@example.test',"
                    " 'h', false, true, '2026-11-25 12:00:00')")
                conn.exec_driver_sql(
                    "INSERT INTO folders (id, account_id, name, uidvalidity, uidnext, subscribed)"
                    " VALUES (1, 1, 'INBOX', 7, 2, true)")
                conn.execute(text(
                    "INSERT INTO messages (folder_id, uid, guid, internal_date, size, flags, body)"
                    " VALUES (1, 1, 'g1', '2026-11-25 12:00:00', 10, :flags, :body)"),
                    {"body": SUBJECTED, "flags": "$Label \\SEEN \\flagged"})
            migrations.upgrade(engine)
            assert migrations.is_current(engine)
            with engine.begin() as conn:   # 0012: system flags in the spelling searches match
                flags = conn.exec_driver_sql("SELECT flags FROM messages").scalar()
                assert flags == "$Label \\Flagged \\Seen"
            with engine.begin() as conn:
                assert directory.get_account(conn, "ann@example.test") is not None
                queue.enqueue(conn, "ann@example.test", ["x@remote.test"], BODY, NOW,
                              account_id=1, queue_id="Q1")
                assert [r.recipient for r in queue.listing(conn)] == ["x@remote.test"]
            assert_headers(engine)
            migrations.downgrade(engine, "0009")
            with engine.begin() as conn:
                row = conn.exec_driver_sql("SELECT search_headers FROM messages").one()
                assert "subject: grüße" in row[0]
            migrations.upgrade(engine)
            assert_headers(engine)
        finally:
            engine.dispose()


SUBJECTED = (b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nDate: Wed, 25 Nov 2026 10:00:00 +0100"
             b"\r\n\r\nhi\r\n")


def assert_headers(engine):
    with engine.begin() as conn:
        row = conn.exec_driver_sql("SELECT search_headers, sent_at FROM message_headers").one()
        assert "subject: grüße" in row[0]
        assert str(row[1]).startswith("2026-11-25 10:00:00")   # as written (0013: SENTON)
        assert conn.exec_driver_sql("SELECT body_text FROM message_text").scalar() == "hi"
