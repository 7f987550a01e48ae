"""Port 25's store work: statements per RCPT and per delivery, and the analysis outside the
writer lock (issue 16).

Why: each statement costs more Python time in SQLAlchemy than SQLite spends running it,
and SQLite's single writer waits while a delivery holds it.  These tests keep the
statement counts from creeping back and check that fewer statements still say the same:
hosted or not, alias, disabled account, quota room, missing INBOX, growing UIDs.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from mailstack.delivery import routing
from mailstack.message.spool import spooled
from mailstack.store import directory, mailboxes, routes
from mailstack.store.errors import NotFound

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
MESSAGE = b"From: a <a@b.test>\r\nTo: u@example.test\r\nSubject: s\r\n\r\nbody\r\n"


class Accepted:
    def __init__(self, account_ids):
        self.account_ids, self.remote, self.address = account_ids, False, "u@example.test"


@pytest.fixture
def store(db):
    db.run_sync(directory.ensure_domains, ["example.test"], AT)
    ids = {name: db.run_sync(directory.add_account, f"{name}@example.test", "x", AT)
           for name in ("u", "v", "off", "full")}
    db.run_sync(directory.add_alias, "team@example.test", "u@example.test")
    db.run_sync(directory.add_alias, "team@example.test", "v@example.test")
    db.run_sync(directory.set_enabled, "off@example.test", False)
    db.run_sync(directory.set_quota, "full@example.test", 1000)
    return db, ids


def _statements(db):
    seen = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, context, many: seen.append(sql))
    return seen


def test_an_rcpt_to_an_account_is_one_query(store):
    db, ids = store
    seen = _statements(db)
    route = db.read_sync(routes.route, "u@example.test")
    assert route == routes.Route(True, routes.Recipients((ids["u"],)), None)
    assert len([sql for sql in seen if sql.lstrip().upper().startswith("SELECT")]) == 1


def test_routes_say_what_they_said_before(store):
    db, ids = store
    route = lambda address: db.read_sync(routes.route, address)  # noqa: E731
    assert route("u@elsewhere.test") == routes.Route(False)
    assert route("nobody@example.test") == routes.Route(True, routes.Recipients(()))
    assert route("off@example.test") == routes.Route(True, routes.Recipients(()))
    assert route("team@example.test") == routes.Route(
        True, routes.Recipients((ids["u"], ids["v"])), None)
    assert route("full@example.test") == routes.Route(
        True, routes.Recipients((ids["full"],)), 1000)
    db.run_sync(mailboxes.deliver, [ids["full"]], MESSAGE, AT)
    assert route("full@example.test").room == 1000 - len(MESSAGE)


def test_a_delivery_allocates_its_uid_in_one_statement(store):
    db, ids = store
    seen = _statements(db)
    for expected_uid in (1, 2, 3):
        spool = spooled(MESSAGE)
        prepared = routing.local_copy("a@b.test", [Accepted((ids["u"],))], spool,
                                      b"Received: x\r\n", db.engine.dialect.name)
        db.run_sync(routing.store_message, "a@b.test", [Accepted((ids["u"],))], spool,
                    b"Received: x\r\n", AT, hostname="h", prepared=prepared)
        spool.close()
        inbox = db.read_sync(mailboxes.require_folder, ids["u"], "INBOX")
        assert inbox.uidnext == expected_uid + 1
    folder_statements = [sql for sql in seen if "folders" in sql.split("(")[0]]
    assert len(folder_statements) == 3 + 3        # one UPDATE per delivery, one check each
    uids = [m.uid for m in db.read_sync(mailboxes.list_messages, inbox.id)]
    assert uids == [1, 2, 3]


def test_a_delivery_to_an_account_without_inbox_fails_whole(store):
    db, ids = store
    db.run_sync(lambda conn: conn.exec_driver_sql(
        f"DELETE FROM folders WHERE account_id = {int(ids['v'])} AND name = 'INBOX'"))
    with pytest.raises(NotFound):
        db.run_sync(mailboxes.deliver, [ids["u"], ids["v"]], MESSAGE, AT)
    inbox = db.read_sync(mailboxes.require_folder, ids["u"], "INBOX")
    assert db.read_sync(mailboxes.list_messages, inbox.id) == []


def test_the_analysis_runs_before_the_writer_lock(db):
    """What ``run_prepared`` runs in its write thread: prepare, then the transaction."""
    held = []
    result = db._prepared_sync(lambda: held.append(_locked(db)) or "facts",
                               lambda conn, prepared: (prepared, _locked(db)))
    sqlite = db.engine.dialect.name == "sqlite"
    assert result == ("facts", sqlite) and held == [False]


def _locked(db) -> bool:
    lock = db._writer
    return lock.locked() if hasattr(lock, "locked") else False
