"""SPAM Blocker per customer (issue 18, items 2 and 4): the settings and lists in the store
(SQLite and PostgreSQL), the per-account filing decided in one query, the copies built for
it, and which sender identities may match an allow list."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import event

from mailstack.delivery import routing, spam_copies
from mailstack.message.spool import Spool, spooled
from mailstack.policy import spam_lists
from mailstack.policy.arc_check import ARCResult
from mailstack.policy.authentication import Stamp
from mailstack.policy.outcome import Accepted
from mailstack.policy.dmarc import DMARCResult
from mailstack.policy.request import SMTPRequest
from mailstack.policy.spf_check import SPFResult
from mailstack.store import directory, mailboxes, routes, spam_filing, spam_settings
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.spam_filing import ALLOWED, BLOCKED, Filing, PLAIN, Screening

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
HEADER = (b"X-Spam-Status: Yes, score=4.00 required=15.00 action=add_header\r\n"
          b"X-Spam-Score: 4.00\r\nX-Spam-Symbols: MISSING_DATE(1.00)\r\n")
MESSAGE = b"From: x@spam.test\r\nSubject: Cheap\r\n\r\nSubject: in the body\r\n"


@pytest.fixture
def accounts(db):
    db.run_sync(directory.add_domain, "example.test", NOW)
    return {name: db.run_sync(directory.add_account, f"{name}@example.test", "h", NOW)
            for name in ("ann", "bob", "cat", "dan")}


def test_patterns_are_addresses_or_domains_with_a_dot_kept_lower_case():
    assert spam_settings.pattern_of(" Ann@Friend.EXAMPLE. ") == "ann@friend.example"
    assert spam_settings.pattern_of("news.example.org") == "news.example.org"
    for bad in ("com", "", "@example.org", "a b@example.org", "example..org", "-x.org",
                "ann@", "x@y@example.org"):
        with pytest.raises(ValueError):
            spam_settings.pattern_of(bad)


def test_new_accounts_take_the_default_and_the_switch_keeps_the_tag_unless_told(db, accounts):
    on = db.run_sync(directory.add_account, "eve@example.test", "h", NOW, True)
    assert db.run_sync(spam_settings.settings, on) == spam_settings.Settings(True, False)
    db.run_sync(directory.import_accounts, [(1, "fay@example.test", "h", [])], NOW,
                with_aliases=False, spam_blocker=True)
    fay = db.run_sync(directory.get_account, "fay@example.test").id
    assert db.run_sync(spam_settings.settings, fay).blocker
    ann = accounts["ann"]
    assert db.run_sync(spam_settings.settings, ann) == spam_settings.Settings(False, False)
    db.run_sync(spam_settings.set_blocker, ann, True, True)
    assert db.run_sync(spam_settings.set_blocker, ann, False) == spam_settings.Settings(False, True)
    with pytest.raises(NotFound):
        db.run_sync(spam_settings.set_blocker, 99999, True)


def test_lists_add_list_remove_and_one_list_per_pattern(db, accounts):
    ann, bob = accounts["ann"], accounts["bob"]
    db.run_sync(spam_settings.add_entry, ann, "allow", "Friend@Example.org")
    db.run_sync(spam_settings.add_entry, ann, "allow", "example.net")
    db.run_sync(spam_settings.add_entry, bob, "block", "friend@example.org")   # bob's own
    assert db.run_sync(spam_settings.entries, ann, "allow") == ["example.net",
                                                                "friend@example.org"]
    with pytest.raises(Conflict, match="already on the allow list"):
        db.run_sync(spam_settings.add_entry, ann, "block", "friend@example.org")
    with pytest.raises(Conflict):
        db.run_sync(spam_settings.add_entry, ann, "allow", "example.net")
    db.run_sync(spam_settings.remove_entry, ann, "allow", "EXAMPLE.NET")
    with pytest.raises(NotFound):
        db.run_sync(spam_settings.remove_entry, ann, "block", "friend@example.org")
    assert db.run_sync(spam_settings.entries, ann, "allow") == ["friend@example.org"]
    db.run_sync(directory.delete_account, "ann@example.test")        # the list goes with it
    assert db.run_sync(spam_settings.entries, bob, "block") == ["friend@example.org"]


def test_candidates_are_the_address_its_domain_and_parents_of_two_labels():
    assert spam_filing.candidates("Ann@Mail.News.Example.org") == [
        "ann@mail.news.example.org", "mail.news.example.org", "news.example.org",
        "example.org"]


@pytest.mark.parametrize("spam, blocker, tag, kind, filing", [
    (False, False, False, None, PLAIN),
    (False, True, True, None, PLAIN),                       # clean mail: INBOX
    (True, False, True, None, PLAIN),                       # blocker off: INBOX, marked
    (True, True, False, None, Filing(junk=True)),
    (True, True, True, None, Filing(junk=True, tag=True)),
    (True, True, True, "allow", Filing(note=ALLOWED)),      # allow: INBOX, never tagged
    (False, False, True, "block", Filing(junk=True, tag=True, note=BLOCKED)),  # blocker off
])
def test_the_filing_of_one_account(spam, blocker, tag, kind, filing):
    assert spam_filing.choose(spam, blocker, tag, kind) == filing


def test_the_most_specific_entry_wins_and_block_wins_a_tie():
    everyone = {"ann@example.org", "example.org", "news.example.org"}
    assert spam_filing.listed([("allow", "example.org"), ("block", "ann@example.org")],
                              everyone) == "block"
    assert spam_filing.listed([("block", "example.org"), ("allow", "ann@example.org")],
                              everyone) == "allow"
    assert spam_filing.listed([("block", "example.org"), ("allow", "news.example.org")],
                              everyone) == "allow"
    assert spam_filing.listed([("allow", "example.org")], set()) is None   # not trusted


def test_each_account_gets_its_filing_from_one_query(db, accounts):
    ann, bob, cat, dan = (accounts[n] for n in ("ann", "bob", "cat", "dan"))
    db.run_sync(spam_settings.set_blocker, ann, True, True)
    db.run_sync(spam_settings.set_blocker, cat, True)
    db.run_sync(spam_settings.add_entry, cat, "allow", "friend.example")
    db.run_sync(spam_settings.add_entry, dan, "block", "boss@mail.friend.example")
    screening = Screening(HEADER, True, ("x@spam.test", "boss@mail.friend.example"),
                          ("boss@mail.friend.example",))
    assert db.run_sync(spam_filing.choices, [ann, bob, cat, dan], screening) == {
        ann: Filing(junk=True, tag=True), bob: PLAIN, cat: Filing(note=ALLOWED),
        dan: Filing(junk=True, note=BLOCKED)}
    assert db.run_sync(spam_filing.allowed_by_any, [ann, cat], screening)
    forged = Screening(HEADER, True, screening.senders, ())      # SPF/DMARC failed
    assert db.run_sync(spam_filing.choices, [cat], forged) == {cat: Filing(junk=True)}
    assert not db.run_sync(spam_filing.allowed_by_any, [ann, cat], forged)
    nobody = Screening(HEADER, True)                             # null sender, no From:
    assert db.run_sync(spam_filing.choices, [ann, bob], nobody)[bob] == PLAIN


def test_copies_go_to_each_accounts_folder_tagged_and_noted(db, accounts):
    ann, bob, dan = accounts["ann"], accounts["bob"], accounts["dan"]
    db.run_sync(spam_settings.set_blocker, ann, True, True)
    db.run_sync(spam_settings.add_entry, dan, "block", "spam.test")
    common = b"Return-Path: <x@spam.test>\r\n" + HEADER + MESSAGE
    screening = Screening(HEADER, True, ("x@spam.test",), ("x@spam.test",))

    def deliver(conn):
        spam_copies.deliver(conn, [ann, bob, dan], (common, None), NOW, screening=screening)
    db.run_sync(deliver)
    assert copies(db, ann) == {"Junk": [b"Return-Path: <x@spam.test>\r\n" + HEADER
                                        + MESSAGE.replace(b"Subject: Cheap",
                                                          b"Subject: [SPAM] Cheap")]}
    assert copies(db, bob) == {"INBOX": [common]}
    (dans,) = copies(db, dan)["Junk"]
    assert dans.startswith(b"Return-Path: <x@spam.test>\r\nX-Spam-Status: Yes, score=4.00 "
                           b"required=15.00 action=add_header sender=blocked\r\n")
    assert b"[SPAM]" not in dans


def test_a_dmarc_quarantine_still_files_every_copy_in_junk(db, accounts):
    ann = accounts["ann"]
    screening = Screening(HEADER, False, ("x@spam.test",), ("x@spam.test",))
    db.run_sync(lambda conn: spam_copies.deliver(conn, [ann], (MESSAGE, None), NOW, junk=True,
                                                 screening=screening))
    assert list(copies(db, ann)) == ["Junk"]


def copies(db, account_id) -> dict[str, list[bytes]]:
    def read(conn):
        found = {}
        for folder in mailboxes.list_folders(conn, account_id):
            ids = [m.id for m in mailboxes.list_messages(conn, folder.id)]
            if ids:
                found[folder.name] = list(mailboxes.get_bodies(conn, ids).values())
        return found
    return db.run_sync(read)


@pytest.mark.parametrize("message, expected", [
    (b"Subject: Hi\r\n\r\nbody", b"Subject: [SPAM] Hi\r\n\r\nbody"),
    (b"subject:Hi\r\n\r\n", b"subject:[SPAM] Hi\r\n\r\n"),
    (b"Subject: [SPAM] Hi\r\n\r\n", b"Subject: [SPAM] Hi\r\n\r\n"),           # once
    (b"Subject:\r\n =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n",
     b"Subject:[SPAM] \r\n =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"),
    (b"From: a@b.test\r\n\r\nSubject: body\r\n", b"Subject: [SPAM]\r\nFrom: a@b.test\r\n\r\n"
                                                  b"Subject: body\r\n"),
    (b"X-Subject: no\r\n\r\n", b"Subject: [SPAM]\r\nX-Subject: no\r\n\r\n"),
])
def test_the_subject_tag(message, expected):
    assert spam_copies.tagged(message) == expected


def stamp(spf="pass", dmarc="pass") -> Stamp:
    return Stamp("x@spam.test", SPFResult(spf, "spam.test"), SPFResult("none", "helo.test"),
                 (), ARCResult("none"), DMARCResult(dmarc, "example.org"))


def request(head: bytes, sender="Bounce@Spam.test", authentication=None) -> SMTPRequest:
    spool = Spool()
    spool.write(head + b"\r\nbody\r\n")
    return SMTPRequest("data", "s1", "192.0.2.1", "mx", sender=sender, message=spool,
                       authentication=authentication)


def test_the_senders_identities_and_which_may_match_an_allow_list():
    head = b"From: Ann <Ann@Example.org>\r\nSubject: x\r\n"
    assert spam_lists.identities(request(head, authentication=stamp())) == (
        ("bounce@spam.test", "ann@example.org"), ("bounce@spam.test", "ann@example.org"))
    assert spam_lists.identities(request(head, authentication=stamp(spf="fail")))[1] == (
        "ann@example.org",)
    assert spam_lists.identities(request(head, authentication=stamp(dmarc="fail")))[1] == (
        "bounce@spam.test",)
    assert spam_lists.identities(request(head))[1] == ()         # unauthenticated: none
    assert spam_lists.identities(request(head, sender=""))[0] == ("ann@example.org",)


@pytest.mark.parametrize("head, author", [
    (b"From: Ann <ann@example.org>\r\n", "ann@example.org"),
    (b"from:\r\n ann@Example.ORG\r\n", "ann@example.org"),
    (b"From: a@x.test, b@y.test\r\n", None),                 # several authors
    (b"From: a@x.test\r\nFrom: b@y.test\r\n", None),         # two fields
    (b"Subject: none\r\n", None),
    (b"From: undisclosed\r\n", None),
])
def test_the_author_is_the_one_address_of_the_one_from_field(head, author):
    assert spam_lists.author_of(head + b"\r\nFrom: body@z.test\r\n") == author


def test_the_rcpt_route_says_whose_settings_may_matter(db, accounts):
    ann, bob, cat = accounts["ann"], accounts["bob"], accounts["cat"]
    db.run_sync(spam_settings.set_blocker, ann, True)
    db.run_sync(spam_settings.add_entry, cat, "block", "spam.test")
    db.run_sync(directory.add_alias, "team@example.test", "ann@example.test")
    db.run_sync(directory.add_alias, "team@example.test", "bob@example.test")
    db.run_sync(directory.add_alias, "team@example.test", "cat@example.test")
    found = db.read_sync(routes.route, "ann@example.test").recipients
    assert (found.spam_blocker, found.spam_lists) == ((ann,), ())
    found = db.read_sync(routes.route, "team@example.test").recipients
    assert found.account_ids == (ann, bob, cat)
    assert (found.spam_blocker, found.spam_lists) == ((ann,), (cat,))
    assert db.read_sync(routes.route, "bob@example.test").recipients.spam_lists == ()


def Rcpt(account_ids, blocker=(), lists=()) -> Accepted:
    return Accepted("x@example.test", account_ids, spam_blocker=blocker, spam_lists=lists)


def test_the_settings_are_read_again_only_when_they_may_change_a_copy():
    clean, spam = Screening(HEADER, False), Screening(HEADER, True)
    assert spam_copies.worth_asking(clean, [Rcpt((1,), blocker=(1,))]) is None
    assert spam_copies.worth_asking(spam, [Rcpt((1,)), Rcpt((2,))]) is None
    assert spam_copies.worth_asking(spam, [Rcpt((1,)), Rcpt((2,), blocker=(2,))]) is spam
    assert spam_copies.worth_asking(clean, [Rcpt((1,), lists=(1,))]) is clean
    assert spam_copies.worth_asking(None, [Rcpt((1,), lists=(1,))]) is None


def test_clean_mail_to_customers_without_lists_costs_no_statement_more(db, accounts):
    ann = accounts["ann"]
    db.run_sync(spam_settings.set_blocker, ann, True, True)
    seen = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda conn, cursor, sql, *rest: seen.append(sql))
    rcpt = Rcpt((ann,), blocker=(ann,))
    for screening, folder in ((Screening(HEADER, False), "INBOX"),
                              (Screening(HEADER, True), "Junk")):
        spool = spooled(MESSAGE)
        db.run_sync(routing.store_message, "x@spam.test", [rcpt], spool, b"Received: x\r\n",
                    NOW, hostname="h", screening=screening)
        spool.close()
        assert [f for f, bodies in copies(db, ann).items() for _ in bodies][-1] == folder
        looked = [sql for sql in seen if "spam_senders" in sql]
        assert len(looked) == (0 if folder == "INBOX" else 1)
