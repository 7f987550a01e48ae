"""Sieve in the delivery transaction (issue 19, item 1), below the protocol: the RCPT
route's flag, what the scripts cost in statements, and how the implicit keep composes with
SPAM Blocker's filing (issue 18).  SQLite and PostgreSQL; the real store and spool."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from mailstack.delivery import routing
from mailstack.delivery.sieve_delivery import Sieve
from mailstack.dkim.signer import NO_SIGNER
from mailstack.message.spool import spooled
from mailstack.policy.outcome import Accepted
from mailstack.store import directory, mailboxes, routes, sieve_scripts, spam_settings
from mailstack.store.spam_filing import Screening

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
HEADER = b"X-Spam-Status: Yes, score=4.00 required=15.00 action=add_header\r\n"
MESSAGE = b"From: x@spam.test\r\nTo: ann@example.test\r\nSubject: Cheap\r\n\r\nBuy.\r\n"
LIMITS = sieve_scripts.Limits(65536, 10)


@pytest.fixture
def accounts(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    return {name: db.run_sync(directory.add_account, f"{name}@example.test", "h", NOW)
            for name in ("ann", "bob")}


def activate(db, account_id, script):
    db.run_sync(sieve_scripts.put_script, account_id, "s", script, NOW, LIMITS)
    db.run_sync(sieve_scripts.set_active, account_id, "s", NOW)


def deliver(db, sieve, rcpt, screening=None, message=MESSAGE):
    spool = spooled(message)
    try:
        run = sieve.for_message("x@spam.test", [rcpt], spool, b"Received: x\r\n", "Q1",
                                at_data=True)
        db.run_sync(routing.store_message, "x@spam.test", [rcpt], spool, b"Received: x\r\n",
                    NOW, hostname="h", screening=screening, sieve=run)
        return run
    finally:
        spool.close()


def folders_of(db, account_id) -> dict[str, list[bytes]]:
    def read(conn):
        found = {}
        for folder in mailboxes.list_folders(conn, account_id):
            ids = [m.id for m in mailboxes.list_messages(conn, folder.id)]
            if ids:
                found[folder.name] = list(mailboxes.get_bodies(conn, ids).values())
        return found
    return db.run_sync(read)


def accepted(db, address) -> Accepted:
    found = db.read_sync(routes.route, address).recipients
    return Accepted(address, found.account_ids, spam_blocker=found.spam_blocker,
                    spam_lists=found.spam_lists, sieve=found.sieve)


def test_the_rcpt_route_says_which_accounts_have_an_active_script(db, accounts):
    ann = accounts["ann"]
    activate(db, ann, "keep;\n")
    db.run_sync(sieve_scripts.put_script, accounts["bob"], "idle", "keep;\n", NOW, LIMITS)
    ((account, script_id, version),) = accepted(db, "ann@example.test").sieve
    assert (account, version) == (ann, NOW)
    assert db.read_sync(sieve_scripts.content, script_id) == "keep;\n"
    assert accepted(db, "bob@example.test").sieve == ()          # stored, not active
    db.run_sync(directory.add_alias, "both@example.test", "ann@example.test")
    db.run_sync(directory.add_alias, "both@example.test", "bob@example.test")
    assert accepted(db, "both@example.test").sieve == ((ann, script_id, NOW),)
    later = NOW.replace(hour=13)
    db.run_sync(sieve_scripts.put_script, ann, "s", "discard;\n", later, LIMITS)
    assert accepted(db, "ann@example.test").sieve == ((ann, script_id, later),)


def test_delivery_reads_a_script_once_per_version_and_no_statement_otherwise(db, accounts):
    sieve = Sieve("h", NO_SIGNER)
    activate(db, accounts["ann"], 'require "fileinto";\nfileinto "Trash";\n')
    ann, bob = accepted(db, "ann@example.test"), accepted(db, "bob@example.test")
    seen = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: seen.append(sql))
    counts = []
    for rcpt in (bob, ann, ann, ann):
        before = len(seen)
        assert (deliver(db, sieve, rcpt) is None) == (rcpt is bob)
        counts.append(len(seen) - before)
    # The script's text once (then compiled and cached), else as many as without a script
    # (fileinto finds its folder by name, where the INBOX is found as its UID is taken).
    (read,) = [sql for sql in seen if "sieve_scripts" in sql]
    assert "content" in read
    assert counts == [counts[0], counts[0] + 2, counts[0] + 1, counts[0] + 1]
    assert len(folders_of(db, accounts["ann"])["Trash"]) == 3


@pytest.mark.parametrize("script, folder", [
    ("keep;\n", "Junk"),                                   # the keep follows SPAM Blocker
    ('require "imap4flags";\naddflag "$x";\n', "Junk"),     # an implicit keep too
    ('require "fileinto";\nfileinto "Trash";\n', "Trash"),  # an explicit fileinto wins
    ('require "fileinto";\nfileinto "INBOX";\n', "Junk"),   # fileinto INBOX is a keep
    ('require ["reject", "fileinto"];\nfileinto "Trash";\nreject "x";\n', "INBOX"),  # fails
])
def test_the_keep_files_where_spam_blocker_would_and_fileinto_wins(db, accounts, script,
                                                                  folder):
    ann = accounts["ann"]
    db.run_sync(spam_settings.set_blocker, ann, True, True)
    activate(db, ann, script)
    run = deliver(db, Sieve("h", NO_SIGNER), accepted(db, "ann@example.test"),
                  Screening(HEADER, True))
    (found,) = folders_of(db, ann).items()
    assert found[0] == folder
    assert b"Subject: [SPAM] Cheap" in found[1][0]
    assert bool([n for n in run.problems if "failed" in n]) == (folder == "INBOX")


def test_a_reject_for_the_one_recipient_stores_nothing_and_says_so(db, accounts):
    activate(db, accounts["ann"], 'require "reject";\nreject text:\nGo away\n\tnow\n.\n;\n')
    run = deliver(db, Sieve("h", NO_SIGNER), accepted(db, "ann@example.test"))
    assert str(run.refusal.reply) == (
        "550 5.7.1 <ann@example.test>: Message rejected by the recipient: Go away now")
    assert folders_of(db, accounts["ann"]) == {}


@pytest.mark.parametrize("script, folder", [
    ("keep;\n", "Junk"),
    ('require "fileinto";\nfileinto "Drafts";\n', "Drafts"),
])
def test_a_dmarc_quarantine_is_where_the_keep_files_and_fileinto_still_wins(db, accounts,
                                                                           script, folder):
    ann = accounts["ann"]
    activate(db, ann, script)
    spool = spooled(MESSAGE)
    rcpt = accepted(db, "ann@example.test")
    try:
        run = Sieve("h", NO_SIGNER).for_message("x@spam.test", [rcpt], spool, b"", "Q1",
                                                at_data=True)
        db.run_sync(routing.store_message, "x@spam.test", [rcpt], spool, b"Received: x\r\n",
                    NOW, hostname="h", junk=True, sieve=run)
    finally:
        spool.close()
    assert list(folders_of(db, ann)) == [folder]
