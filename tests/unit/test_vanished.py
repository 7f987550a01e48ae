"""QRESYNC's store side (store/vanished.py, store/condstore.py): every expunge -- IMAP,
MOVE, POP3, the administrator's -- remembers its UIDs with the modseq it made; the history
is pruned after ``KEPT_CHANGES`` changes and a client older than that gets every missing
UID; a conditional STORE keeps what changed meanwhile; the migration starts the floor at
today's modseq."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from mailstack.store import (
    changes, condstore, directory, imap_store, mailbox_admin, maildrop, mailboxes, vanished,
)
from mailstack.store.db import make_engine
from mailstack.store.migrations import downgrade, upgrade
from mailstack.store.search_criteria import Uids
from tests.support import databases

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def inbox(db):
    db.run_sync(directory.ensure_domains, ["example.test"], NOW)
    account = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    infos = [db.run_sync(mailboxes.deliver, [account], f"Subject: {n}\r\n\r\nx\r\n".encode(),
                         NOW)[0] for n in range(1, 9)]
    folder = db.run_sync(mailboxes.require_folder, account, mailboxes.INBOX)
    return account, folder, infos


def modseq(db, folder_id):
    return db.run_sync(changes.modseqs, [folder_id])[folder_id]


def test_a_new_folder_starts_at_modseq_1_and_messages_carry_theirs(db, inbox):
    account, folder, infos = inbox
    drafts = db.run_sync(mailboxes.require_folder, account, "Drafts")
    assert drafts.modseq == 1                                  # RFC 7162: positive
    listed = db.run_sync(mailboxes.list_messages, folder.id)
    assert [m.modseq for m in listed] == [m.modseq for m in infos] == list(range(2, 10))


def test_every_kind_of_expunge_is_remembered_with_its_modseq(db, inbox):
    account, folder, infos = inbox
    marks = [modseq(db, folder.id)]
    db.run_sync(imap_store.store_flags, folder.id, {infos[0].id: frozenset({"\\Deleted"})})
    db.run_sync(imap_store.expunge, folder.id)                                 # IMAP: 1
    marks.append(modseq(db, folder.id))
    db.run_sync(imap_store.move_messages, account, folder.id, [infos[1].id], "Junk")  # 2
    marks.append(modseq(db, folder.id))
    db.run_sync(maildrop.close_maildrop, account, "nobody", [infos[2].id, infos[3].id])
    marks.append(modseq(db, folder.id))                                        # POP3: 3, 4
    db.run_sync(mailbox_admin.expunge, "ann@example.test", "INBOX", Uids(((8, 8),)))
    marks.append(modseq(db, folder.id))                                        # admin: 8
    since = [db.run_sync(vanished.since, folder.id, m) for m in marks]
    assert since == [[1, 2, 3, 4, 8], [2, 3, 4, 8], [3, 4, 8], [8], []]
    assert marks == sorted(set(marks))


def test_pruning_raises_the_floor_and_the_fallback_lists_every_missing_uid(db, inbox):
    account, folder, infos = inbox
    db.run_sync(mailboxes.delete_messages, folder.id, [infos[1].id])     # UID 2
    first = modseq(db, folder.id)
    db.run_sync(mailboxes.delete_messages, folder.id, [infos[4].id, infos[5].id])   # 5, 6
    assert db.run_sync(vanished.prune, folder.id, first) == 1
    assert db.run_sync(vanished.since, folder.id, first - 1) is None      # history gone
    assert db.run_sync(vanished.since, folder.id, first) == [5, 6]        # still exact
    assert db.run_sync(condstore.vanished_since, folder.id, 1, 10) == [(2, 2), (5, 6),
                                                                         (9, 10)]
    assert db.run_sync(vanished.prune, folder.id, first) == 0


def test_expunges_beyond_kept_changes_are_pruned_on_the_next_expunge(db, inbox, monkeypatch):
    account, folder, infos = inbox
    monkeypatch.setattr(vanished, "KEPT_CHANGES", 2)
    db.run_sync(mailboxes.delete_messages, folder.id, [infos[0].id])
    after_first = modseq(db, folder.id)
    db.run_sync(imap_store.store_flags, folder.id, {infos[1].id: frozenset({"\\Seen"})})
    db.run_sync(mailboxes.delete_messages, folder.id, [infos[2].id])
    assert db.run_sync(vanished.since, folder.id, after_first - 1) is None
    assert db.run_sync(vanished.since, folder.id, after_first) == [3]


def test_conditional_store_skips_messages_changed_since(db, inbox):
    account, folder, infos = inbox
    ids = [infos[0].id, infos[1].id, infos[2].id]
    stored = db.run_sync(condstore.store_flags, folder.id, ids, "+", {"\\Seen"}, infos[1].modseq)
    assert stored.modified == [infos[2].id]
    now = modseq(db, folder.id)
    assert stored.modseqs == {infos[0].id: now, infos[1].id: now, infos[2].id: infos[2].modseq}
    again = db.run_sync(condstore.store_flags, folder.id, ids[:1], "+", {"\\Seen"}, now)
    assert again.modified == [] and modseq(db, folder.id) == now   # no change, no new modseq
    assert db.run_sync(condstore.store_flags, folder.id, ids[:1], "-", {"\\Seen"},
                       0).modified == ids[:1]                     # UNCHANGEDSINCE 0 fails
    changed = db.run_sync(condstore.changed_since, folder.id, now - 1)
    assert [m.uid for m in changed] == [1, 2]


def test_deleting_a_folder_takes_its_vanished_rows(db, inbox):
    account, folder, infos = inbox
    db.run_sync(imap_store.create_with_parents, account, "Old", NOW)
    old = db.run_sync(mailboxes.require_folder, account, "Old")
    db.run_sync(imap_store.copy_messages, account, [infos[0].id], "Old")
    (copy,) = db.run_sync(mailboxes.list_messages, old.id)
    db.run_sync(mailboxes.delete_messages, old.id, [copy.id])
    db.run_sync(imap_store.delete_folder, account, "Old")
    count = db.run_sync(lambda c: c.execute(text(
        "SELECT COUNT(*) FROM vanished WHERE folder_id = :f"), {"f": old.id}).scalar())
    assert count == 0


@pytest.mark.parametrize("backend", databases.backends())
def test_migration_0023_starts_the_floor_at_todays_modseq(backend, tmp_path):
    """Expunges made before 0023 were never recorded: a resync from before it must get the
    full answer; modseq 0 (never a mod-sequence, RFC 7162) becomes 1."""
    with databases.fresh_database(backend, tmp_path, "0022") as url:
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
                    "INSERT INTO folders (id, account_id, name, uidvalidity, uidnext, subscribed,"
                    " modseq) VALUES (1, 1, 'INBOX', 7, 3, true, 0), "
                    "(2, 1, 'Sent', 8, 9, true, 41)")
            upgrade(engine)
            with engine.begin() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT id, modseq, vanished_floor FROM folders ORDER BY id").all()
                assert [tuple(r) for r in rows] == [(1, 1, 1), (2, 41, 41)]
                assert vanished.since(conn, 2, 40) is None and vanished.since(conn, 2, 41) == []
            downgrade(engine, "0022")
            upgrade(engine)
        finally:
            engine.dispose()
