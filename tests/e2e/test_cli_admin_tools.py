"""What an administrator reaches for (issue 15, items 12 and 15), on every database backend:
``mailstack`` with a config file, its cases through ``cli.main.main`` in this process and
each command group once more as a subprocess, as operators run it (``tests/support/cli.py``).

doveadm's mailbox/fetch/search/expunge on IMAP's own SEARCH, ``quota recalc``, ``auth
test`` through the realm's checker, postsuper's queue controls, and ``domain delete``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from mailstack.store import changes, directory, logins, mailboxes, queue
from tests.support.cli import Cli

ANN = "ann@example.test"
PASSWORD = "correct horse"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
MESSAGES = [   # (From, Subject, Date): UIDs 1, 2, 3 in the INBOX
    ("Bob Jones <bob@remote.test>", "Invoice", "Tue, 1 Dec 2026 10:00:00 +0000"),
    ("carol@remote.test", "=?utf-8?q?Caf=C3=A9_menu?=", "Wed, 2 Dec 2026 08:00:00 +0000"),
    ("bob@remote.test", "Reminder", "Mon, 30 Nov 2026 10:00:00 +0000"),
]


@pytest.fixture
def cli(cli_in_process):
    """The commands' logic, in this process; ``test_each_group_runs_as_an_operator_types_it``
    runs them as a subprocess."""
    return cli_in_process


def raw(sender: str, subject: str, date: str) -> bytes:
    return (f"From: {sender}\r\nTo: {ANN}\r\nSubject: {subject}\r\nDate: {date}\r\n"
            f"Message-ID: <{subject[:8]}@remote.test>\r\n\r\nHello from {sender}\r\n").encode()


@pytest.fixture
def mailbox(cli, db):
    """ann's INBOX with MESSAGES, the first one \\Seen; returns its folder id."""
    assert cli("domain", "add", "example.test").returncode == 0
    assert cli("account", "add", ANN, "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    account = db.run_sync(directory.get_account, ANN)
    for n, message in enumerate(MESSAGES):
        flags = ("\\Seen",) if n == 0 else ()
        inbox = db.run_sync(mailboxes.require_folder, account.id, "INBOX")
        db.run_sync(mailboxes.append, inbox.id, raw(*message), NOW, flags)
    return inbox.id


def ok(done) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def one_line_error(done, code: int, text: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert text in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


# --- mailbox list|status|search|fetch|expunge ----------------------------------------------------

def test_mailbox_list_and_status_count_as_imap_status(cli, mailbox):
    folders = json.loads(ok(cli("mailbox", "list", ANN, "--format", "json")))
    assert {f["folder"] for f in folders} == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}
    inbox = next(f for f in folders if f["folder"] == "INBOX")
    size = sum(len(raw(*m)) for m in MESSAGES)
    assert inbox == {"folder": "INBOX", "messages": 3, "unseen": 2, "size": size, "uidnext": 4}
    status = json.loads(ok(cli("mailbox", "status", ANN, "INBOX", "--format", "json")))
    assert (status["messages"], status["unseen"], status["size"], status["uidnext"]) == (
        3, 2, size, 4)
    assert "unseen:" in ok(cli("mailbox", "status", ANN))          # INBOX by default, a table


def test_mailbox_search_reads_imap_search_keys(cli, mailbox):
    def search(*query):
        return json.loads(ok(cli("mailbox", "search", ANN, "INBOX", *query, "--format", "json")))
    assert search() == [1, 2, 3]
    assert search("FROM", "bob", "UNSEEN") == [3]
    assert search("FROM bob SENTSINCE 1-Dec-2026") == [1]            # one argument: as written
    assert search("SUBJECT", "café") == [2]                           # decoded, non-ASCII quoted
    assert search("SUBJECT", "Café menu") == [2]                      # a word with a space
    assert search("OR", "SEEN", "(FROM", "carol", "SUBJECT", "menu)") == [1, 2]
    assert search("NOT", "2:*") == [1]                                # sequence numbers
    assert search("NEW") == [2, 3]                                    # no session saw them
    assert ok(cli("mailbox", "search", ANN, "INBOX", "FROM", "nobody")) == ""


def test_mailbox_fetch_shows_fields_and_the_stored_message(cli, mailbox):
    rows = json.loads(ok(cli("mailbox", "fetch", ANN, "INBOX", "SUBJECT", "café",
                             "--format", "json")))
    assert rows == [{"uid": 2, "from": "carol@remote.test", "subject": "Café menu",
                     "date": "Wed, 2 Dec 2026 08:00:00 +0000", "size": len(raw(*MESSAGES[1]))}]
    table = ok(cli("mailbox", "fetch", ANN, "INBOX", "SEEN", "--field", "uid,from,flags"))
    assert table.splitlines() == ["UID  FROM                         FLAGS",
                                  "1    Bob Jones <bob@remote.test>  \\Seen"]
    body = cli("mailbox", "fetch", ANN, "INBOX", "UID", "3", "--body", text=False)
    assert body.returncode == 0 and body.stdout == raw(*MESSAGES[2])
    both = cli("mailbox", "fetch", ANN, "INBOX", "FROM", "bob", "--body", text=False).stdout
    assert both == raw(*MESSAGES[0]) + b"\x0c\n" + raw(*MESSAGES[2])


def test_mailbox_expunge_needs_yes_and_tells_imap_sessions(cli, mailbox, db):
    one_line_error(cli("mailbox", "expunge", ANN, "INBOX", "FROM", "bob"), 1, "--yes")
    before = db.read_sync(changes.modseqs, [mailbox])[mailbox]
    done = ok(cli("mailbox", "expunge", ANN, "INBOX", "FROM", "bob", "--yes"))
    assert done.strip() == f"2 message(s) expunged from INBOX of {ANN}"
    assert [m.uid for m in db.read_sync(mailboxes.list_messages, mailbox)] == [2]
    # The folder's change counter moved: IMAP sessions (and IDLE) learn of the expunge.
    assert db.read_sync(changes.modseqs, [mailbox])[mailbox] > before


BAD_MAILBOX_INPUT = [
    (("mailbox", "search", ANN, "INBOX", "FROM"), 1, "bad search query"),
    (("mailbox", "search", ANN, "INBOX", "SINCE", "yesterday"), 1, "bad search query"),
    (("mailbox", "search", ANN, "Nowhere"), 1, "no folder Nowhere"),
    (("mailbox", "list", "ghost@example.test"), 1, "no account ghost@example.test"),
    (("mailbox", "status", "not an address"), 1, "not a valid address"),
    (("mailbox", "fetch", ANN, "--field", "uid,colour"), 2, "unknown field colour"),
    (("mailbox", "fetch", ANN, "--body", "--format", "json"), 2, "--body"),
    (("mailbox", "expunge", ANN, "INBOX", "ALL"), 1, "--yes"),
]


def test_bad_mailbox_input_is_one_line_and_changes_nothing(cli, mailbox, db):
    for args, code, text in BAD_MAILBOX_INPUT:
        one_line_error(cli(*args), code, text)
    assert len(db.read_sync(mailboxes.list_messages, mailbox)) == 3


# --- quota recalc --------------------------------------------------------------------------------

def test_quota_recalc_reports_usage_summed_now_against_the_quota(cli, mailbox):
    size = sum(len(raw(*m)) for m in MESSAGES)
    ok(cli("account", "quota", ANN, str(size - 1)))
    (row,) = json.loads(ok(cli("quota", "recalc", ANN, "--format", "json")))
    assert (row["messages"], row["bytes"], row["quota"], row["over"]) == (3, size, size - 1, True)
    ok(cli("account", "add", "bea@example.test", "--password-stdin", stdin=PASSWORD + "\n"))
    every = json.loads(ok(cli("quota", "recalc", "--all", "--format", "json")))
    assert [(r["address"], r["bytes"], r["quota"]) for r in every] == [
        (ANN, size, size - 1), ("bea@example.test", 0, "unlimited")]
    assert "no cached count" in ok(cli("quota", "recalc", "--all"))
    one_line_error(cli("quota", "recalc"), 1, "--all")
    one_line_error(cli("quota", "recalc", "ghost@example.test"), 1, "no account")


# --- auth test -----------------------------------------------------------------------------------

def test_auth_test_checks_through_the_realm_and_records_a_test_login(cli, mailbox, db):
    cli = Cli(cli.config)           # a subprocess: the realm's checker runs on a reactor
    good = cli("auth", "test", ANN, "--password-stdin", stdin=PASSWORD + "\n")
    assert (good.returncode, good.stdout.strip()) == (0, f"ok: {ANN}")
    bad = cli("auth", "test", ANN, "--password-stdin", "--ip", "192.0.2.7", stdin="wrong\n")
    assert (bad.returncode, bad.stdout.strip()) == (1, f"failed: {ANN}: bad-password")
    account = db.read_sync(directory.get_account, ANN)
    events = db.read_sync(logins.recent, account_id=account.id)
    assert [(e.protocol, e.success, e.client_ip) for e in events] == [
        ("test", False, "192.0.2.7"), ("test", True, "127.0.0.1")]
    ok(cli("account", "disable", ANN))
    disabled = cli("auth", "test", ANN, "--password-stdin", stdin=PASSWORD + "\n")
    assert (disabled.returncode, disabled.stdout.strip()) == (1, f"failed: {ANN}: disabled")
    assert PASSWORD not in good.stdout + good.stderr + bad.stdout + bad.stderr


def test_auth_test_never_takes_the_password_on_the_command_line(cli, mailbox):
    assert cli("auth", "test", ANN, "--password", PASSWORD).returncode == 2
    one_line_error(cli("auth", "test", ANN), 2, "--password-stdin")   # no terminal to prompt


# --- queue hold|release|requeue|delete -----------------------------------------------------------

def test_queue_controls_hold_release_requeue_and_delete(cli, db):
    db.run_sync(queue.enqueue, ANN, ["x@remote.test", "y@other.test"], b"Subject: a\r\n\r\n",
                NOW, queue_id="Q1")
    db.run_sync(queue.enqueue, ANN, ["z@other.test"], b"Subject: b\r\n\r\n", NOW,
                queue_id="Q2")

    def statuses():
        rows = json.loads(ok(cli("queue", "list", "--format", "json")))
        return {r["recipient"]: r["status"] for r in rows}
    assert "2 recipient(s) of Q1 held" in ok(cli("queue", "hold", "Q1"))
    assert statuses() == {"x@remote.test": "held", "y@other.test": "held",
                          "z@other.test": "queued"}
    assert "held" in ok(cli("queue", "list"))
    assert [d.recipient for d in db.run_sync(queue.claim_due, NOW, NOW + timedelta(minutes=5),
                                             10)] == ["z@other.test"]
    assert ok(cli("queue", "release", "--all", "--to", "Remote.Test")).startswith("1 recipient")
    assert statuses()["x@remote.test"] == "queued"
    assert ok(cli("queue", "requeue", "Q1")).startswith("1 recipient(s) of Q1 due now")
    assert ok(cli("queue", "delete", "--all", "--to", "other.test")).startswith("2 recipient")
    assert statuses() == {"x@remote.test": "queued"}
    assert ok(cli("queue", "delete", "Q1")).startswith("1 recipient(s) of Q1 deleted")
    assert ok(cli("queue", "list")).strip() == "the queue is empty"


BAD_QUEUE_INPUT = [
    (("queue", "hold"), "a queue id or --all"),
    (("queue", "release", "Q1", "--all"), "a queue id or --all"),
    (("queue", "requeue", "Q9"), "no queued message Q9"),
    (("queue", "delete", "Q9"), "no queued message Q9"),
    (("queue", "delete", "--all", "--to", "bad_domain!"), "not a valid domain"),
]


def test_bad_queue_input_is_one_line_and_changes_nothing(cli, db):
    db.run_sync(queue.enqueue, ANN, ["x@remote.test"], b"Subject: a\r\n\r\n", NOW, queue_id="Q1")
    for args, text in BAD_QUEUE_INPUT:
        one_line_error(cli(*args), 1, text)
    assert [r.status for r in db.run_sync(queue.listing)] == ["queued"]


# --- domain delete -------------------------------------------------------------------------------

def test_domain_delete_is_refused_while_it_has_accounts_unless_confirmed(cli, mailbox, db):
    ok(cli("domain", "add", "other.test"))
    ok(cli("account", "add", "olga@other.test", "--password-stdin", stdin=PASSWORD + "\n"))
    ok(cli("alias", "add", "sales@example.test", ANN))
    ok(cli("alias", "add", "ann@other.test", ANN))          # another domain's alias to ann
    one_line_error(cli("domain", "delete", "example.test"), 1, "--with-accounts --yes")
    one_line_error(cli("domain", "delete", "example.test", "--with-accounts"), 1, "--yes")
    assert db.read_sync(directory.get_account, ANN) is not None
    done = ok(cli("domain", "delete", "example.test", "--with-accounts", "--yes"))
    assert done.strip() == "domain example.test deleted with 1 account(s) and 1 alias(es)"
    domains = json.loads(ok(cli("domain", "list", "--format", "json")))
    assert domains == [{"domain": "other.test", "accounts": 1}]
    assert json.loads(ok(cli("alias", "list", "--format", "json"))) == []
    assert [a.address for a in db.read_sync(directory.list_accounts)] == ["olga@other.test"]
    assert db.read_sync(directory.usage_by_account) == [("olga@other.test", 0, 0, None)]
    ok(cli("account", "delete", "olga@other.test", "--yes"))
    assert ok(cli("domain", "delete", "other.test")).strip() == "domain other.test deleted"
    one_line_error(cli("domain", "delete", "other.test"), 1, "not hosted here")


def test_a_domain_in_the_configuration_is_not_deleted(db_url, tmp_path):
    config = tmp_path / "hosted.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n[domains]\nhosted = ["example.test"]\n')
    one_line_error(Cli(config)("domain", "delete", "example.test"), 1, "[domains] hosted")


# --- the same commands as a process --------------------------------------------------------------

def test_each_group_runs_as_an_operator_types_it(mailbox, tmp_path):
    """What only a process shows: the entry point, a password from a pipe, bytes on stdout,
    exit statuses."""
    process = Cli(tmp_path / "mailstack.toml")           # the file the ``cli`` fixture wrote
    status = json.loads(ok(process("mailbox", "status", ANN, "INBOX", "--format", "json")))
    assert status["messages"] == 3
    body = process("mailbox", "fetch", ANN, "INBOX", "UID", "3", "--body", text=False)
    assert body.returncode == 0 and body.stdout == raw(*MESSAGES[2])
    assert ok(process("mailbox", "search", ANN, "INBOX", "UNSEEN")).split() == ["2", "3"]
    assert "no cached count" in ok(process("quota", "recalc", "--all"))
    assert process("auth", "test", ANN, "--password", PASSWORD).returncode == 2
    assert ok(process("queue", "list")).strip() == "the queue is empty"
    one_line_error(process("queue", "hold"), 1, "a queue id or --all")
    one_line_error(process("domain", "delete", "example.test"), 1, "--with-accounts --yes")
