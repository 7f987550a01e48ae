"""The Junk folder's learn queue on every backend (store/spam_learning.py): which copies
teach what, uniqueness per message and direction, claims with leases, retries and their
backoff, retention -- and that the row is written in the COPY/MOVE's own transaction.

Why these tests: a learn must be durable exactly when the IMAP OK is, and must never be
sent to rspamd twice (two processes on one database, or the same message moved twice).
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet import reactor

from mailstack.spam.learning import MAX_DELAY, outcome, retry_delay
from mailstack.store import directory, imap_store, mailboxes, spam_learning as queue
from mailstack.store.db import Database

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
LEASE = timedelta(minutes=2)
BODY = b"From: a@b.test\r\nSubject: cheap pills\r\n\r\nbuy now\r\n"
REC = queue.Recording(NOW, 1024)


@pytest.fixture
def account(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    return db.run_sync(directory.add_account, "ann@example.test", "h", NOW)


def deliver(db, account, folder="INBOX", body=BODY) -> int:
    def put(conn):
        info = mailboxes.require_folder(conn, account, folder)
        return mailboxes.append(conn, info.id, body, NOW, set()).id
    return db.run_sync(put)


def folder_id(db, account, name):
    return db.run_sync(mailboxes.require_folder, account, name).id


def rows(db):
    counts, _ = db.run_sync(queue.summary)
    return counts


def claim(db, at=NOW):
    return db.run_sync(queue.claim_next, at, at + LEASE)


@pytest.mark.parametrize("source, target, learned", [
    (None, "\\Junk", "spam"), ("\\Sent", "\\Junk", "spam"), ("\\Junk", None, "ham"),
    ("\\Junk", "\\Archive", "ham"), ("\\Junk", "\\Trash", None), ("\\Junk", "\\Junk", None),
    (None, "\\Trash", None), (None, None, None)])
def test_which_copies_teach_what(source, target, learned):
    assert queue.direction(source, target) == learned


def test_move_into_junk_queues_one_spam_learn_in_the_moves_transaction(db, account):
    message = deliver(db, account)
    inbox = folder_id(db, account, "INBOX")
    db.run_sync(imap_store.move_messages, account, inbox, [message], "Junk", learning=REC)
    assert rows(db) == {("pending", "spam"): 1}
    row = claim(db)
    assert (row.direction, row.body, row.attempts) == ("spam", BODY, 1)


def test_the_learn_keeps_its_body_when_the_message_is_expunged_meanwhile(db, account):
    message = deliver(db, account)
    db.run_sync(imap_store.copy_messages, account, [message], "Junk", learning=REC)
    junk = folder_id(db, account, "Junk")
    copies = [m.id for m in db.run_sync(mailboxes.list_messages, junk)]
    db.run_sync(imap_store.update_flags, junk, copies, "+", {"\\Deleted"})
    assert db.run_sync(imap_store.expunge, junk) == copies
    assert claim(db).body == BODY


def test_a_failed_copy_leaves_no_learn_behind(db, account):
    message = deliver(db, account)

    def copy_then_crash(conn):
        imap_store.copy_messages(conn, account, [message], "Junk", learning=REC)
        raise RuntimeError("the transaction fails after the copy")
    with pytest.raises(RuntimeError):
        db.run_sync(copy_then_crash)
    assert rows(db) == {}


def test_without_learning_and_for_other_folders_nothing_is_queued(db, account):
    message = deliver(db, account)
    db.run_sync(imap_store.copy_messages, account, [message], "Junk")            # off
    db.run_sync(imap_store.copy_messages, account, [message], "Sent", learning=REC)
    junk = deliver(db, account, "Junk")
    db.run_sync(imap_store.move_messages, account, folder_id(db, account, "Junk"), [junk],
                "Trash", learning=REC)
    assert rows(db) == {}


def test_one_learn_per_message_and_direction_however_often_it_moves(db, account):
    message = deliver(db, account)
    junk = folder_id(db, account, "Junk")
    db.run_sync(imap_store.copy_messages, account, [message], "Junk", learning=REC)
    db.run_sync(imap_store.copy_messages, account, [message], "Junk", learning=REC)
    copies = [m.id for m in db.run_sync(mailboxes.list_messages, junk)]
    db.run_sync(imap_store.move_messages, account, junk, copies, "INBOX", learning=REC)
    db.run_sync(imap_store.copy_messages, account, [message], "Junk", learning=REC)
    assert rows(db) == {("pending", "spam"): 1, ("pending", "ham"): 1}
    other = db.run_sync(directory.add_account, "bob@example.test", "h", NOW)
    db.run_sync(queue.record, other, "spam", BODY, REC)       # another account's own learn
    assert rows(db)[("pending", "spam")] == 2


def test_a_message_over_the_size_limit_is_counted_not_kept(db, account):
    message = deliver(db, account, body=BODY + b"x" * 2000)
    db.run_sync(imap_store.copy_messages, account, [message], "Junk", learning=REC)
    assert rows(db) == {("too_large", "spam"): 1}
    assert claim(db) is None
    _, problems = db.run_sync(queue.summary)
    assert problems[0].error == "too large to learn"


def test_a_claim_is_exclusive_until_its_lease_expires(db, account):
    db.run_sync(queue.record, account, "spam", BODY, REC)
    assert claim(db, NOW - timedelta(seconds=1)) is None        # not yet due
    first = claim(db)
    assert first is not None and rows(db) == {("learning", "spam"): 1}
    assert claim(db, NOW + LEASE - timedelta(seconds=1)) is None   # another learner: held
    again = claim(db, NOW + LEASE + timedelta(seconds=1))       # the first one died
    assert (again.id, again.attempts) == (first.id, 2)


def test_two_learners_claiming_at_once_never_share_a_row(db, db_url, account):
    for i in range(2):
        db.run_sync(queue.record, account, "spam", BODY + b"%d" % i, REC)
    other = Database(db_url, reactor=reactor, threads=2)         # a second process
    claimed, release, b_done = threading.Event(), threading.Event(), threading.Event()
    results = {}

    def learner_a(conn):
        results["a"] = queue.claim_next(conn, NOW, NOW + LEASE)
        claimed.set()
        assert release.wait(10)           # the transaction (and its row lock) stays open

    def learner_b():
        results["b"] = other.run_sync(queue.claim_next, NOW, NOW + LEASE)
        b_done.set()
    a = threading.Thread(target=db.run_sync, args=(learner_a,))
    b = threading.Thread(target=learner_b)
    try:
        a.start()
        assert claimed.wait(10)
        b.start()
        if db.engine.dialect.name == "postgresql":
            assert b_done.wait(5)         # SKIP LOCKED: the other row, without waiting
        release.set()
        a.join(10)
        b.join(10)
    finally:
        release.set()
        other.stop()
    assert results["a"] is not None and results["b"] is not None
    assert results["a"].id != results["b"].id


def test_a_retry_waits_until_its_time_and_keeps_the_error(db, account):
    db.run_sync(queue.record, account, "ham", BODY, REC)
    row = claim(db)
    later = NOW + timedelta(seconds=120)
    db.run_sync(queue.retry, row.id, NOW, "ConnectionRefusedError", later)
    assert claim(db, later - timedelta(seconds=1)) is None
    assert db.run_sync(queue.next_due) == later
    _, (problem,) = db.run_sync(queue.summary)
    assert (problem.status, problem.error, problem.attempts) == (
        "pending", "ConnectionRefusedError", 1)
    assert claim(db, later).attempts == 2


def test_done_drops_the_body_keeps_the_digest_and_old_rows_are_purged(db, account):
    db.run_sync(queue.record, account, "spam", BODY, REC)
    db.run_sync(queue.finish, claim(db).id, NOW, queue.LEARNED)
    db.run_sync(queue.record, account, "ham", BODY, queue.Recording(NOW + timedelta(days=5),
                                                                   1024))
    assert db.run_sync(queue.record, account, "spam", BODY, REC) == 0   # still known
    assert db.run_sync(queue.purge, NOW) == 0
    assert db.run_sync(queue.purge, NOW + timedelta(days=10)) == 1      # pending ham stays
    assert rows(db) == {("pending", "ham"): 1}
    assert db.run_sync(queue.record, account, "spam", BODY, REC) == 1   # forgotten: again


def test_backoff_doubles_from_the_interval_up_to_an_hour():
    assert [retry_delay(60, n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(60, 30) == MAX_DELAY
    assert retry_delay(7200, 3) == 7200          # an interval above the cap is kept


@pytest.mark.parametrize("code, error, result", [
    (200, "", "learned"),
    (208, "<m@x> has been already learned as spam, ignore it", "already_learned"),
    (404, "<m@x> has been already learned as ham, ignore it", "already_learned"),
    (400, "Empty body is not permitted", "refused"),
    (204, "", "learned"),
    (401, "Unauthorized", "retry"), (403, "", "retry"),
    (500, "redis error", "retry"), (503, "", "retry")])
def test_what_rspamds_answers_mean(code, error, result):
    assert outcome(code, error)[0] == result
