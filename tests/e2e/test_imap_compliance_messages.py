"""Issue 12's failure classes about messages and mailboxes, as our own regressions: body
sections are the stored bytes (compared with slices of what was delivered), BODYSTRUCTURE
and ENVELOPE are well formed down to encapsulated messages; \\Recent, LSUB, UIDVALIDITY,
long ID lines, new keywords, expunged messages and BINARY as imaptest drives them; SENT*
searches read the Date header's own zone and address searches ignore comments.  Raw
sessions and the response grammar checks come from test_imap_compliance."""

from __future__ import annotations

import re

import pytest

from mailstack.store import mailboxes
from tests.e2e.test_imap import IMAP_ONLY, PASSWORD, implicit, plain
from tests.e2e.test_imap_compliance import (  # noqa: F401 (imap is a fixture)
    Session, check_body, check_envelope, fetch_items, flags, imap, mailboxes_listed,
)

pytestmark = pytest.mark.e2e

SINGLE = (b"From: Carol <carol@remote.test>\r\nTo: ann@example.test\r\nSubject: plain\r\n"
          b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
          b"Hello Ann,\r\n\r\n  indented   line\t \r\n--not-a-boundary\r\nbye\r\n")
NO_MIME = b"From: dave@remote.test\r\nSubject: no mime\r\n\r\nline one\r\nline two\r\n"
FORWARDED = (b"From: erin@remote.test\r\nTo: ann@example.test\r\nSubject: forwarded\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
             b"preamble text\r\n--outer\r\nContent-Type: text/plain\r\n\r\n"
             b"See the attached message.\r\n--outer\r\nContent-Type: message/rfc822\r\n"
             b"Content-Description: the original\r\n\r\n"
             b"From: Frank <frank@remote.test>\r\nTo: erin@remote.test\r\nSubject: original\r\n"
             b"Date: Mon, 23 Nov 2026 09:00:00 +0100\r\nMessage-ID: <orig@remote.test>\r\n\r\n"
             b"Original   body,\r\n  with odd  whitespace.\t\r\n--outer--\r\nepilogue\r\n")
FOLDED = (b"From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\n"
          b"Mime-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"foo\r\n bar\"\r\n\r\n"
          b"Root MIME prologue\r\n\r\n--foo bar\r\nContent-Type: text/x-myown; charset=us-ascii\r\n"
          b"\r\nhello\r\n\r\n--foo bar\r\nContent-Type: message/rfc822\r\n\r\n"
          b"From: sub@domain.org\r\nSubject: submsg\r\n"
          b"Content-Type: multipart/alternative; boundary=\"sub1\"\r\n\r\n"
          b"Sub MIME prologue\r\n--sub1\r\nContent-Type: text/html\r\n\r\n"
          b"<p>Hello world</p>\r\n\r\n"
          b"--sub1\r\nContent-Type: text/plain\r\n\r\nHello another world\r\n\r\n--sub1--\r\n"
          b"Sub MIME epilogue\r\n\r\n--foo bar--\r\nRoot MIME epilogue\r\n")
DIGEST = (b"From: list@remote.test\r\nSubject: digest\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/digest; boundary=\"d\"\r\n\r\n"
          b"--d\r\n\r\nFrom: a@remote.test\r\nSubject: one\r\n\r\nfirst\r\n"
          b"--d\r\nContent-Type: text/plain\r\n\r\nnot a message\r\n--d--\r\n")
ENVELOPE = (b"Date: Thu, 15 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n"
            b"Sender: \r\nReply-To:\r\n"
            b"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n"
            b"Cc: empty:;, <@route1,@route2:routed@d4.org>\r\nSubject: envelope\r\n\r\nbody\r\n")
MESSAGES = (SINGLE, NO_MIME, FORWARDED, FOLDED, DIGEST, ENVELOPE)


@pytest.fixture
def structured(make_server):
    server = make_server(**IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for raw in MESSAGES:
        server.db(mailboxes.deliver, [server.ann], raw, server.now())
    return server


@pytest.fixture
def session(structured):
    session = Session(structured)
    session.ok("EXAMINE INBOX")
    yield session
    session.close()


def between(raw: bytes, start: bytes, end: bytes | None = None) -> bytes:
    """The stored bytes from ``start`` up to (not including) ``end``."""
    first = raw.index(start)
    return raw[first:raw.index(end, first) if end is not None else len(raw)]


def body_of(raw: bytes) -> bytes:
    return raw[raw.index(b"\r\n\r\n") + 4:]


def section(session, seq: int, name: str) -> bytes:
    return session.fetch(f"FETCH {seq} (BODY.PEEK[{name}])")[seq][f"BODY[{name.upper()}]"]


def lower(value):
    """IMAP data with every string lower-cased, for case-insensitive comparison."""
    if isinstance(value, list):
        return [lower(v) for v in value]
    return value.lower() if isinstance(value, (bytes, str)) else value


# --- 4. body parts are the stored bytes -----------------------------------------------------
def test_a_single_part_message_has_a_part_1_which_is_its_body(session):
    assert section(session, 1, "1") == body_of(SINGLE)              # Roundcube's request
    assert section(session, 1, "1.MIME") == between(SINGLE, b"From:", b"Hello")
    assert section(session, 1, "TEXT") == body_of(SINGLE)
    assert section(session, 2, "1") == b"line one\r\nline two\r\n"   # no MIME headers at all
    assert section(session, 1, "2") == b""                           # no such part: empty


def test_a_message_rfc822_attachment_has_its_header_text_and_parts(session):
    inner = between(FORWARDED, b"From: Frank", b"\r\n--outer--")
    assert section(session, 3, "1") == b"See the attached message."
    assert section(session, 3, "2") == inner
    assert section(session, 3, "2.HEADER") == between(FORWARDED, b"From: Frank", b"Original")
    assert section(session, 3, "2.TEXT") == between(FORWARDED, b"Original", b"\r\n--outer--")
    assert section(session, 3, "2.1") == section(session, 3, "2.TEXT")
    assert section(session, 3, "2.MIME") == between(FORWARDED, b"Content-Type: message/rfc822",
                                                    b"From: Frank")
    assert section(session, 3, "TEXT") == body_of(FORWARDED)        # boundaries and all
    assert section(session, 3, "2.HEADER.FIELDS (SUBJECT)") == b"Subject: original\r\n\r\n"


def test_a_folded_boundary_parameter_parses_and_nested_parts_are_exact_slices(session):
    """imaptest's fetch-body-mime message: boundary="foo\\r\\n bar"."""
    assert section(session, 4, "1") == b"hello\r\n"
    assert section(session, 4, "1.MIME") == b"Content-Type: text/x-myown; charset=us-ascii\r\n\r\n"
    assert section(session, 4, "2") == between(FOLDED, b"From: sub@", b"\r\n--foo bar--")
    assert section(session, 4, "2.MIME") == b"Content-Type: message/rfc822\r\n\r\n"
    assert section(session, 4, "2.TEXT") == between(FOLDED, b"Sub MIME prologue",
                                                    b"\r\n--foo bar--")
    assert section(session, 4, "2.1") == b"<p>Hello world</p>\r\n"
    assert section(session, 4, "2.1.MIME") == b"Content-Type: text/html\r\n\r\n"
    assert section(session, 4, "2.2") == b"Hello another world\r\n"
    structure = lower(session.fetch("FETCH 4 (BODYSTRUCTURE)")[4]["BODYSTRUCTURE"])
    check_body(structure)
    assert structure[0][:3] == [b"text", b"x-myown", [b"charset", b"us-ascii"]]
    assert structure[1][:2] == [b"message", b"rfc822"] and structure[2] == b"mixed"


def test_multipart_digest_parts_default_to_message_rfc822(session):
    structure = lower(session.fetch("FETCH 5 (BODYSTRUCTURE)")[5]["BODYSTRUCTURE"])
    check_body(structure)
    first, second, subtype = structure[:3]
    assert first[:2] == [b"message", b"rfc822"] and subtype == b"digest"
    assert first[7][1] == b"one"                                    # its envelope's subject
    assert second[:2] == [b"text", b"plain"]
    assert section(session, 5, "1.HEADER") == b"From: a@remote.test\r\nSubject: one\r\n\r\n"
    assert section(session, 5, "1.TEXT") == b"first"


# --- 5. BODYSTRUCTURE and ENVELOPE --------------------------------------------------------
def test_a_message_without_content_type_gets_the_rfc_2045_defaults_and_its_body_size(session):
    fetched = session.fetch("FETCH 2 (BODY BODYSTRUCTURE RFC822.SIZE)")[2]
    body = b"line one\r\nline two\r\n"
    expected = [b"text", b"plain", [b"charset", b"us-ascii"], None, None, b"7bit", len(body), 2]
    assert lower(fetched["BODY"]) == expected
    assert lower(fetched["BODYSTRUCTURE"])[:8] == expected
    assert fetched["RFC822.SIZE"] == len(NO_MIME) != len(body)
    single = session.fetch("FETCH 1 (BODYSTRUCTURE)")[1]["BODYSTRUCTURE"]
    assert single[6] == len(body_of(SINGLE)) and single[7] == body_of(SINGLE).count(b"\n")


def test_a_message_rfc822_part_has_envelope_body_and_lines(session):
    structure = session.fetch("FETCH 3 (BODYSTRUCTURE)")[3]["BODYSTRUCTURE"]
    check_body(structure)
    attached = structure[1]
    inner = between(FORWARDED, b"From: Frank", b"\r\n--outer--")
    assert lower(attached[:7]) == [b"message", b"rfc822", None, None, b"the original", b"7bit",
                                   len(inner)]
    envelope, body, lines = attached[7:10]
    assert envelope[1] == b"original"
    assert envelope[2] == [[b"Frank", None, b"frank", b"remote.test"]]
    assert envelope[9] == b"<orig@remote.test>"
    text = between(FORWARDED, b"Original", b"\r\n--outer--")
    assert lower(body)[:7] == [b"text", b"plain", [b"charset", b"us-ascii"], None, None, b"7bit",
                               len(text)]
    # The part's own lines (its last one has no line break: the CRLF is the boundary's).
    assert lines in (inner.count(b"\n"), inner.count(b"\n") + 1), lines


def test_envelope_keeps_groups_and_source_routes_and_fills_sender_and_reply_to(session):
    envelope = session.fetch("FETCH 6 (ENVELOPE)")[6]["ENVELOPE"]
    check_envelope(envelope)
    author = [[b"Real Name", None, b"user", b"domain"]]
    assert envelope[2] == envelope[3] == envelope[4] == author       # empty Sender, Reply-To
    assert envelope[5] == [[None, None, b"group", None], [None, None, b"g1", b"d1.org"],
                           [None, None, b"g2", b"d2.org"], [None, None, None, None],
                           [None, None, b"group2", None], [None, None, b"g3", b"d3.org"],
                           [None, None, None, None]]
    assert envelope[6] == [[None, None, b"empty", None], [None, None, None, None],
                           [None, b"@route1,@route2", b"routed", b"d4.org"]]
    assert envelope[7] is None and envelope[1] == b"envelope"
    for seq, values in session.fetch("FETCH 1:* (ENVELOPE BODYSTRUCTURE)").items():
        check_envelope(values["ENVELOPE"])
        check_body(values["BODYSTRUCTURE"])


# --- 6. \Recent, subscriptions, UIDVALIDITY, long lines, keywords, expunged messages -------
def recent_of(untagged) -> int:
    return next(int(u.split()[1]) for u in untagged if re.match(rb"\* \d+ RECENT\Z", u))


def status_recent(session) -> int:
    status = session.ok("STATUS INBOX (RECENT)")
    return int(re.fullmatch(rb'\* STATUS "?INBOX"? \(RECENT (\d+)\)', status[0]).group(1))


def search_of(untagged) -> list[int]:
    return [int(n) for n in next(u for u in untagged if u.startswith(b"* SEARCH")).split()[2:]]


def test_recent_belongs_to_the_first_session_that_selects_and_examine_leaves_it(imap):
    watcher = Session(imap)
    assert status_recent(watcher) == 3
    assert recent_of(watcher.ok("EXAMINE INBOX")) == 3
    watcher.ok("CLOSE")
    assert status_recent(watcher) == 3                      # EXAMINE took none
    first, second = Session(imap), Session(imap)
    assert recent_of(first.ok("SELECT INBOX")) == 3
    assert "\\RECENT" in flags(first.fetch("FETCH 1 (FLAGS)")[1])
    first.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert search_of(first.ok("SEARCH RECENT")) == [1, 2, 3]
    assert search_of(first.ok("SEARCH NEW")) == [2, 3]
    assert search_of(first.ok("SEARCH OLD")) == []
    assert recent_of(second.ok("SELECT INBOX")) == 0
    assert "\\RECENT" not in flags(second.fetch("FETCH 1 (FLAGS)")[1])
    assert search_of(second.ok("SEARCH RECENT")) == []
    assert search_of(second.ok("SEARCH OLD")) == [1, 2, 3]
    assert status_recent(watcher) == 0
    imap.db(mailboxes.deliver, [imap.ann], plain(4), imap.now())
    assert recent_of(first.ok("NOOP")) == 4                 # the first to hear of it claims it
    assert b"* 4 EXISTS" in second.ok("NOOP")
    assert "\\RECENT" not in flags(second.fetch("FETCH 4 (FLAGS)")[4])
    for session in (watcher, first, second):
        session.close()


def test_lsub_shows_a_noselect_parent_of_a_subscribed_child_and_create_does_not_subscribe(imap):
    """imaptest's ``subscribe`` script."""
    session = Session(imap)
    for name in ("box/", "box/test", "box/test2/", "box/test3/", "box/test2/test",
                 "box/test3/test3"):
        session.ok(f"CREATE {name}")
    assert not any(n.startswith("box") for n in mailboxes_listed(session.ok('LSUB "" *'), "LSUB"))
    for name in ("box/test", "box/test2/test", "box/test3/test3"):
        session.ok(f"SUBSCRIBE {name}")
    assert mailboxes_listed(session.ok('LSUB "" box/%'), "LSUB") == {
        "box/test": set(), "box/test2": {"\\NOSELECT"}, "box/test3": {"\\NOSELECT"}}
    assert mailboxes_listed(session.ok('LSUB "" *test'), "LSUB") == {
        "box/test": set(), "box/test2/test": set()}
    session.ok("UNSUBSCRIBE box/test2/test")
    assert mailboxes_listed(session.ok('LSUB "" box/*'), "LSUB") == {
        "box/test": set(), "box/test3/test3": set()}
    session.close()


def test_a_mailbox_deleted_and_created_again_in_the_same_second_gets_a_new_uidvalidity(imap):
    session = Session(imap)                        # the server's clock does not move
    seen = []
    for _ in range(3):
        session.ok("CREATE Again")
        status = session.ok("STATUS Again (UIDVALIDITY)")[0]
        seen.append(int(re.search(rb"UIDVALIDITY (\d+)", status).group(1)))
        session.ok("DELETE Again")
    assert len(set(seen)) == 3, seen
    session.close()


def test_a_64_kb_id_command_line_is_answered_and_the_session_goes_on(imap):
    session = Session(imap, login=False)
    untagged = session.ok(b'ID ("name" "huge" "x-padding" "' + b"p" * 65536 + b'")')
    assert untagged[0].startswith(b'* ID ("name" "mailstack"')
    session.ok(f'LOGIN ann@example.test "{PASSWORD}"')
    session.close()


def test_a_new_keyword_is_announced_in_flags_and_permanentflags_before_it_is_used(imap):
    setter, watcher = Session(imap), Session(imap)
    setter.ok("SELECT INBOX")
    watcher.ok("SELECT INBOX")
    for session, command in ((setter, "STORE 1 +FLAGS ($Brandnew)"), (watcher, "NOOP")):
        untagged = session.ok(command)
        told = next(i for i, u in enumerate(untagged) if u.startswith(b"* FLAGS ("))
        permanent = next(i for i, u in enumerate(untagged) if u.startswith(b"* OK [PERMANENTFLAGS"))
        used = next(i for i, u in enumerate(untagged) if u.startswith(b"* 1 FETCH"))
        assert told < used and permanent < used, untagged
        assert b"$Brandnew" in untagged[told] and b"$Brandnew" in untagged[permanent]
        assert b"\\*" in untagged[permanent]
    later = Session(imap)
    assert b"$Brandnew" in next(u for u in later.ok("SELECT INBOX") if u.startswith(b"* FLAGS"))
    for session in (setter, watcher, later):
        session.close()


def test_a_read_only_session_told_of_a_new_keyword_is_still_offered_no_permanent_flags(imap):
    """EXAMINE answers PERMANENTFLAGS () and STORE NO [READ-ONLY]; a later PERMANENTFLAGS
    must not offer what STORE refuses (RFC 3501 §6.3.2, §7.1)."""
    watcher, setter = Session(imap), Session(imap)
    assert any(u.startswith(b"* OK [PERMANENTFLAGS ()]") for u in watcher.ok("EXAMINE INBOX"))
    setter.ok("SELECT INBOX")
    setter.ok("STORE 1 +FLAGS ($Brandnew)")
    untagged = watcher.ok("NOOP")
    assert any(u.startswith(b"* FLAGS (") and b"$Brandnew" in u for u in untagged), untagged
    permanent = [u for u in untagged if u.startswith(b"* OK [PERMANENTFLAGS")]
    assert all(u.startswith(b"* OK [PERMANENTFLAGS ()]") for u in permanent), permanent
    assert watcher.command("STORE 1 +FLAGS ($Brandnew)")[0].startswith(b"NO [READ-ONLY]")
    watcher.close()
    setter.close()


def test_fetch_of_a_message_expunged_by_another_session_gets_valid_output(imap):
    """RFC 2180 §4.1: the FETCH is answered with well-formed data, then NO
    [EXPUNGEISSUED] or OK; the expunge is announced at the next command that may."""
    session = Session(imap)
    session.ok("SELECT INBOX")
    other = implicit(imap)
    other.select("INBOX")
    other.store("2", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    for items in ("(UID FLAGS RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY.PEEK[])",
                  "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[1]<0.4>)", "(FLAGS UID)"):
        status, untagged = session.command(f"FETCH 1:3 {items}")
        assert status.startswith(b"OK") or status.startswith(b"NO [EXPUNGEISSUED]"), status
        fetched = dict(fetch_items(u) for u in untagged if b" FETCH " in u[:20])
        assert {1, 3} <= set(fetched), untagged
        for seq in sorted(fetched, key=lambda n: n != 2):        # the expunged one first
            values = fetched[seq]
            if "ENVELOPE" in values:
                check_envelope(values["ENVELOPE"])
                check_body(values["BODYSTRUCTURE"])
        if "BODY[]" in fetched[1]:
            assert fetched[1]["BODY[]"] == plain(1) and fetched[3]["BODY[]"] == plain(3)
    assert b"* 2 EXPUNGE" in session.ok("NOOP")
    session.close()


def test_an_unadvertised_binary_fetch_is_bad_never_a_server_bug(imap):
    session = Session(imap)
    session.ok("SELECT INBOX")
    for items in ("BINARY[1]", "BINARY.PEEK[1]", "BINARY.SIZE[1]", "(FLAGS BINARY[])"):
        status, _ = session.command(f"FETCH 1 {items}")
        assert status.startswith(b"BAD"), (items, status)
    session.ok("NOOP")
    session.close()


# --- 6. searches: the Date header's own zone, addresses without comments ------------------
DATED = [b"Date: Wed, 25 Nov 2026 08:00:00 +0900\r\n",     # the 24th in UTC
         b"Date: Tue, 24 Nov 2026 23:30:00 -0800\r\n",     # the 25th in UTC
         b"Date: Tue, 24 Nov 2026 12:00:00 +0000\r\n"]
ADDRESSED = [b"From: <user-from (comment)@ (comment) domain.org>\r\n",
             b"From: RealFrom <user-from@domain.org>\r\n",
             b"From: user-from@domain.org (RealFrom)\r\n",
             b"From: other-from@domain.org\r\n"]


def test_sent_dates_are_compared_in_the_date_headers_own_zone(make_server):
    server = make_server(**IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for date in DATED:
        server.db(mailboxes.deliver, [server.ann], date + b"Subject: d\r\n\r\nx\r\n", server.now())
    session = Session(server)
    session.ok("SELECT INBOX")
    for keys, found in (("SENTON 25-Nov-2026", [1]), ("SENTON 24-Nov-2026", [2, 3]),
                        ("SENTSINCE 25-Nov-2026", [1]), ("SENTBEFORE 25-Nov-2026", [2, 3]),
                        ("NOT SENTON 24-Nov-2026", [1]), ("SENTSINCE 24-Nov-2026", [1, 2, 3])):
        assert search_of(session.ok(f"SEARCH {keys}")) == found, keys
    session.close()


def test_address_searches_ignore_comments(make_server):
    """imaptest's search-addresses: a comment stands in for a missing display name."""
    server = make_server(**IMAP_ONLY)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for sender in ADDRESSED:
        server.db(mailboxes.deliver, [server.ann], sender + b"Subject: a\r\n\r\nx\r\n",
                  server.now())
    session = Session(server)
    session.ok("SELECT INBOX")
    assert search_of(session.ok("SEARCH FROM user-from@domain.org")) == [1, 2, 3]
    assert search_of(session.ok("SEARCH FROM realfrom")) == [2, 3]
    assert search_of(session.ok("SEARCH FROM -from@domain.org")) == [1, 2, 3, 4]
    session.close()
