"""Folder change counters: every write bumps modseq, a session catches up by reading only
what changed, and the commit of a transaction tells this process's listeners."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from mailstack.store import changes, directory, imap_store, maildrop, mailboxes
from twisted.internet import reactor

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def inbox(db):
    db.run_sync(directory.ensure_domains, ["example.test"], NOW)
    account = db.run_sync(directory.add_account, "ann@example.test", "h", NOW)
    folder = db.run_sync(mailboxes.require_folder, account, mailboxes.INBOX)
    return account, folder


def body(n):
    return f"Subject: m{n}\r\n\r\nbody {n}\r\n".encode()


def modseq(db, folder_id):
    return db.run_sync(changes.modseqs, [folder_id])[folder_id]


def test_each_kind_of_write_bumps_the_folder_modseq(db, inbox):
    account, folder = inbox
    seen = [modseq(db, folder.id)]
    infos = [db.run_sync(mailboxes.deliver, [account], body(n), NOW)[0] for n in (1, 2, 3)]
    seen.append(modseq(db, folder.id))
    db.run_sync(imap_store.store_flags, folder.id, {infos[0].id: frozenset({"\\Deleted"})})
    seen.append(modseq(db, folder.id))
    db.run_sync(imap_store.expunge, folder.id)
    seen.append(modseq(db, folder.id))
    db.run_sync(imap_store.copy_messages, account, [infos[1].id], "Trash")
    assert modseq(db, folder.id) == seen[-1]               # the source of a COPY is unchanged
    db.run_sync(imap_store.move_messages, account, folder.id, [infos[1].id], "Junk")
    seen.append(modseq(db, folder.id))
    db.run_sync(maildrop.close_maildrop, account, "nobody", [infos[2].id])   # POP3 DELE + QUIT
    seen.append(modseq(db, folder.id))
    assert seen == sorted(set(seen)) and len(seen) == 6


def test_changes_since_reads_only_changed_rows_and_detects_expunges(db, inbox):
    account, folder = inbox
    infos = [db.run_sync(mailboxes.deliver, [account], body(n), NOW)[0] for n in range(1, 6)]
    held = db.run_sync(mailboxes.get_folder, account, mailboxes.INBOX)
    folder_now, changed, alive = db.run_sync(imap_store.changes_since, account, folder.id,
                                                held.modseq, 5, infos[-1].uid)
    assert changed == [] and alive is None and folder_now.modseq == held.modseq
    db.run_sync(imap_store.store_flags, folder.id, {infos[1].id: frozenset({"\\Seen"})})
    new = db.run_sync(mailboxes.deliver, [account], body(6), NOW)[0]
    _, changed, alive = db.run_sync(imap_store.changes_since, account, folder.id,
                                       held.modseq, 5, infos[-1].uid)
    assert [m.uid for m in changed] == [infos[1].uid, new.uid] and alive is None
    db.run_sync(imap_store.store_flags, folder.id, {infos[3].id: frozenset({"\\Deleted"})})
    db.run_sync(imap_store.expunge, folder.id)
    _, changed, alive = db.run_sync(imap_store.changes_since, account, folder.id,
                                       held.modseq, 5, infos[-1].uid)
    assert alive == {m.uid for m in infos if m is not infos[3]} | {new.uid}


def test_recent_goes_to_the_first_session_that_sees_a_message_read_write(db, inbox):
    """RFC 3501 §2.3.2: EXAMINE takes no \\Recent; the first SELECT takes them all; a
    message arriving later is claimed by the first session that takes it into its view."""
    account, folder = inbox
    first = [db.run_sync(mailboxes.deliver, [account], body(n), NOW)[0] for n in (1, 2)]
    _, _, recent_from = db.run_sync(imap_store.open_folder, account, mailboxes.INBOX, False)
    assert recent_from == first[0].uid                         # EXAMINE sees, takes nothing
    _, _, recent_from = db.run_sync(imap_store.open_folder, account, mailboxes.INBOX, True)
    assert recent_from == first[0].uid                         # this SELECT takes both
    _, _, recent_from = db.run_sync(imap_store.open_folder, account, mailboxes.INBOX, True)
    assert recent_from > first[1].uid                          # the next one gets none
    late = db.run_sync(mailboxes.deliver, [account], body(3), NOW)[0]
    claims = [db.run_sync(imap_store.claim_recent, folder.id, late.uid) for _ in range(2)]
    assert claims[0] == late.uid and claims[1] > late.uid
    status = db.run_sync(imap_store.status, account, mailboxes.INBOX, ["RECENT"])
    assert status == {"RECENT": 0}


def test_store_adds_and_removes_on_the_stored_flags_not_a_sessions_copy(db, inbox):
    """Two sessions, each with an old copy: +Answered in one and -Seen in the other both
    stay (RFC 3501 §6.4.6 describes changes, not a new absolute value)."""
    account, folder = inbox
    info = db.run_sync(mailboxes.deliver, [account], body(1), NOW)[0]
    db.run_sync(imap_store.update_flags, folder.id, [info.id], "=", {"\\Seen", "$Work"})
    db.run_sync(imap_store.update_flags, folder.id, [info.id], "+", {"\\Answered"})
    result = db.run_sync(imap_store.update_flags, folder.id, [info.id], "-", {"\\SEEN"})
    assert result == {info.id: frozenset({"\\Answered", "$Work"})}
    stored = db.run_sync(mailboxes.list_messages, folder.id)[0].flags
    assert stored == {"\\Answered", "$Work"}


def test_a_commit_tells_the_listeners_which_folders_it_wrote(db, inbox):
    account, folder = inbox
    heard = []
    db.commit_listeners.append(heard.append)
    called = []      # what the database thread hands to the reactor thread
    db.reactor = type("R", (), {"callFromThread": lambda self, f, *a: called.append((f, a))})()
    try:
        db.run_sync(mailboxes.deliver, [account], body(1), NOW)
        db.run_sync(mailboxes.list_folders, account)        # a read tells nobody
    finally:
        db.reactor = reactor
    assert len(called) == 1
    fn, args = called[0]
    fn(*args)
    assert heard == [{folder.id}]
