"""The POP3 maildrop on every backend: one holder at a time, expiry, QUIT in one transaction."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from twisted.internet import reactor

from mailstack.store import directory, mailboxes, maildrop
from mailstack.store.db import Database
from mailstack.store.errors import Conflict

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(minutes=10)


@pytest.fixture
def db(db_url):
    database = Database(db_url, reactor=reactor, threads=4)
    database.run_sync(directory.add_domain, "example.test", NOW)
    yield database
    database.stop()


def account_with_mail(db, address="ann@example.test", n=3) -> int:
    account = db.run_sync(directory.add_account, address, "h", NOW)
    for i in range(n):
        db.run_sync(mailboxes.deliver, [account], f"Subject: {i}\r\n\r\nbody {i}\r\n".encode(), NOW)
    return account


def inbox_ids(db, account):
    return db.read_sync(lambda c: [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, account, mailboxes.INBOX).id)])


def test_snapshot_lists_the_inbox_in_uid_order_with_stable_guids(db):
    ann = account_with_mail(db)
    drop = db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    assert [e.id for e in drop] == inbox_ids(db, ann)
    assert len({e.guid for e in drop}) == 3 and all(e.size > 0 for e in drop)
    db.run_sync(maildrop.close_maildrop, ann, "s1", [])
    assert db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER) == drop


def test_a_held_lock_refuses_a_second_session_until_released(db):
    ann = account_with_mail(db)
    db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    with pytest.raises(maildrop.InUse):
        db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER)
    db.run_sync(maildrop.release, ann, "s2")            # not the holder: changes nothing
    with pytest.raises(maildrop.InUse):
        db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER)
    db.run_sync(maildrop.release, ann, "s1")
    db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER)


def test_an_expired_lock_of_a_crashed_process_is_taken_over(db):
    ann = account_with_mail(db)
    db.run_sync(maildrop.open_maildrop, ann, "crashed", NOW, LATER)
    db.run_sync(maildrop.open_maildrop, ann, "next", LATER, LATER + timedelta(minutes=10))
    assert not db.run_sync(maildrop.refresh, ann, "crashed", LATER + timedelta(hours=1))
    assert db.run_sync(maildrop.refresh, ann, "next", LATER + timedelta(hours=1))


def test_refresh_keeps_a_live_session_from_being_taken_over(db):
    ann = account_with_mail(db)
    db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    db.run_sync(maildrop.refresh, ann, "s1", LATER + timedelta(minutes=10))
    with pytest.raises(maildrop.InUse):
        db.run_sync(maildrop.open_maildrop, ann, "s2", LATER, LATER + timedelta(minutes=10))


def test_close_deletes_only_own_messages_and_releases_in_one_transaction(db):
    ann, bob = account_with_mail(db), account_with_mail(db, "bob@example.test")
    drop = db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    bobs = inbox_ids(db, bob)
    assert db.run_sync(maildrop.close_maildrop, ann, "s1", [drop[0].id, bobs[0]]) == 1
    assert inbox_ids(db, ann) == [e.id for e in drop[1:]] and inbox_ids(db, bob) == bobs
    db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER)   # the lock went with it


def test_bodies_are_the_stored_bytes_and_only_the_accounts_own(db):
    ann, bob = account_with_mail(db), account_with_mail(db, "bob@example.test")
    drop = db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    found = db.read_sync(maildrop.bodies, ann, [e.id for e in drop] + inbox_ids(db, bob))
    assert sorted(found) == [e.id for e in drop]
    assert found[drop[1].id] == b"Subject: 1\r\n\r\nbody 1\r\n"
    assert len(found[drop[1].id]) == drop[1].size


def test_concurrent_logins_give_exactly_one_holder(db):
    ann = account_with_mail(db)
    outcomes, barrier = [], threading.Barrier(4)

    def login(holder):
        barrier.wait()
        try:
            db.run_sync(maildrop.open_maildrop, ann, holder, NOW, LATER)
            outcomes.append("ok")
        except (maildrop.InUse, Conflict):
            outcomes.append("in use")

    threads = [threading.Thread(target=login, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["in use"] * 3 + ["ok"]


def test_a_node_frees_only_the_locks_recorded_under_its_own_name(db):
    ann = account_with_mail(db)
    bob = account_with_mail(db, "bob@example.test", n=0)
    db.run_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER, "host-a:/srv/a")
    db.run_sync(maildrop.open_maildrop, bob, "s2", NOW, LATER, "host-b:/srv/b")
    assert db.run_sync(maildrop.release_node, "host-a:/srv/a") == 1
    db.run_sync(maildrop.open_maildrop, ann, "s3", NOW, LATER)        # ann's is free at once
    with pytest.raises(maildrop.InUse):
        db.run_sync(maildrop.open_maildrop, bob, "s4", NOW, LATER)    # bob's node is alive


# --- volatile writes (issue 16): the lease is not flushed, everything else still is ----------

def flushed_setting(conn) -> str:
    if conn.dialect.name == "sqlite":
        return {1: "off", 2: "on"}[conn.exec_driver_sql("PRAGMA synchronous").scalar()]
    return conn.exec_driver_sql("SHOW synchronous_commit").scalar()


def test_a_volatile_write_is_not_flushed_and_the_next_durable_one_is_again(db):
    assert db.run_volatile_sync(flushed_setting) == "off"
    assert db.run_sync(flushed_setting) == "on"


def test_a_failed_volatile_write_leaves_no_setting_behind(db):
    def fails(conn):
        flushed_setting(conn)
        raise maildrop.InUse("someone")
    for _ in range(8):                # every pooled connection has had a failed one
        with pytest.raises(maildrop.InUse):
            db.run_volatile_sync(fails)
    assert all(db.run_sync(flushed_setting) == "on" for _ in range(8))


def test_a_volatile_lock_is_seen_by_the_next_login(db):
    ann = account_with_mail(db)
    db.run_volatile_sync(maildrop.open_maildrop, ann, "s1", NOW, LATER)
    with pytest.raises(maildrop.InUse):
        db.run_sync(maildrop.open_maildrop, ann, "s2", NOW, LATER)
