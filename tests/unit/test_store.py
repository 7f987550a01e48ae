"""The store on every backend: migrations, directory, UID allocation, login events."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect

from mailstack.store import directory, logins, mailboxes, migrations, routes
from mailstack.store.db import make_engine
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import metadata

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def test_migrations_create_exactly_the_schema_the_code_uses(db):
    inspector = inspect(db.engine)
    for table in metadata.sorted_tables:
        found = {c["name"] for c in inspector.get_columns(table.name)}
        assert found == {c.name for c in table.columns}, table.name
    assert migrations.is_current(db.engine)


def test_migrating_twice_changes_nothing(db):
    migrations.upgrade(db.engine)
    assert migrations.current_revision(db.engine) == migrations.head_revision()


def test_declared_head_is_alembics_head():
    assert migrations.HEAD == migrations.head_revision()


def test_account_gets_the_standard_folders_and_duplicate_is_refused(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    account_id = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    names = [f.name for f in db.run_sync(mailboxes.list_folders, account_id)]
    assert sorted(names) == ["Drafts", "INBOX", "Junk", "Sent", "Trash"]
    with pytest.raises(Conflict):
        db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    with pytest.raises(NotFound):
        db.run_sync(directory.add_account, "bob@elsewhere.test", "h", NOW)


def test_failed_unit_of_work_leaves_nothing_behind(db):
    db.run_sync(directory.add_domain, "example.test", NOW)

    def half_done(conn):
        directory.add_account(conn, "ann@example.test", "h", NOW)
        raise RuntimeError("crash after the insert")

    with pytest.raises(RuntimeError):
        db.run_sync(half_done)
    assert db.run_sync(directory.get_account, "ann@example.test") is None


def test_alias_resolves_to_its_local_accounts(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    ann = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    bob = db.run_sync(directory.add_account, "bob@example.test", "h", NOW)
    db.run_sync(directory.add_alias, "sales@example.test", "ann@example.test")
    db.run_sync(directory.add_alias, "sales@example.test", "bob@example.test")
    found = db.run_sync(routes.resolve, "sales@example.test")
    assert found.account_ids == (ann, bob) and found.forward == ()
    with pytest.raises(NotFound):          # a hosted target must be an account
        db.run_sync(directory.add_alias, "sales@example.test", "nobody@example.test")
    assert not db.run_sync(routes.resolve, "nobody@example.test").exists


def test_an_alias_reaches_accounts_here_and_forwards_to_remote_addresses(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    ann = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    assert db.run_sync(directory.add_alias, "team@example.test", "ann@example.test") is False
    assert db.run_sync(directory.add_alias, "team@example.test", "bob@remote.test") is True
    assert db.run_sync(directory.add_alias, "out@example.test", "carol@far.test") is True
    route = db.run_sync(routes.route, "team@example.test")
    assert route.hosted and route.recipients.account_ids == (ann,)
    assert route.recipients.forward == ("bob@remote.test",)
    only = db.run_sync(routes.route, "out@example.test")
    assert only.recipients.exists and only.recipients.account_ids == ()
    assert only.recipients.forward == ("carol@far.test",) and only.room is None
    with pytest.raises(Conflict):
        db.run_sync(directory.add_alias, "team@example.test", "bob@remote.test")


def test_concurrent_deliveries_get_distinct_increasing_uids(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    ann = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    uids, errors = [], []

    def deliver():
        try:
            for _ in range(10):
                stored = db.run_sync(mailboxes.deliver, [ann], b"Subject: x\r\n\r\nbody\r\n", NOW)
                uids.append(stored[0].uid)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(uids) == list(range(1, 41))
    inbox = db.run_sync(mailboxes.require_folder, ann, "INBOX")
    assert inbox.uidnext == 41
    assert len(db.run_sync(mailboxes.list_messages, inbox.id)) == 40


def test_login_events_are_found_by_ip_and_time(db):
    for minutes, ip in ((0, "127.0.0.5"), (5, "127.0.0.5"), (20, "127.0.0.6")):
        db.run_sync(logins.record, logins.LoginEvent(
            at=NOW + timedelta(minutes=minutes), username="ann@example.test", protocol="pop3",
            client_ip=ip, tls=False, mechanism="USER", success=True))
    found = db.run_sync(logins.recent, client_ip="127.0.0.5", since=NOW + timedelta(minutes=1))
    assert [e.at for e in found] == [NOW + timedelta(minutes=5)]
    assert found[0].at.tzinfo is not None


def test_in_memory_sqlite_is_refused():
    with pytest.raises(ValueError):
        make_engine("sqlite://")
