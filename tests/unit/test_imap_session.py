"""The IMAP session (protocols/imap*.py) over a StringTransport: login, the selected state
and its commands against a real SQLite store, on simulated time
(tests/support/sessions.py).

Standards: RFC 3501 (commands, states §3 and §6, tagged BAD §2.2.2, untagged EXPUNGE
§7.4.1), RFC 4315 (APPENDUID), RFC 2595 (STARTTLS, LOGINDISABLED).
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest

from mailstack.store import condstore
from tests.support import sessions

ANN = "ann@example.test"
ONE = b"Subject: one\r\nFrom: Ann <ann@example.test>\r\n\r\nhello\r\n"
TWO = b"Subject: two\r\n\r\nbody two\r\n"
THREE = b"Subject: three\r\n\r\nthe third\r\n"


@pytest.fixture
def ann(stack) -> int:
    account = stack.add_account(ANN, "secret")
    stack.deliver(account, ONE, TWO, THREE)
    return account


def logged_in(stack) -> sessions.Client:
    client = stack.imap()
    assert re.fullmatch(rb"l OK \[CAPABILITY [^]]+\] Logged in\r\n",
                        client.send(f"l LOGIN {ANN} secret"))
    return client


def selected(stack, mailbox: str = "INBOX") -> sessions.Client:
    client = logged_in(stack)
    assert client.send(f"s SELECT {mailbox}").endswith(b"s OK [READ-WRITE] SELECT completed\r\n")
    return client


def fetched_flags(line: bytes) -> set[bytes]:
    return set(re.fullmatch(rb"\* \d+ FETCH \(FLAGS \(([^)]*)\)\)", line).group(1).split())


def capabilities(line: bytes) -> set[bytes]:
    return set(re.search(rb"CAPABILITY ([^]\r]+)", line).group(1).split())


# --- greeting, CAPABILITY, LOGIN --------------------------------------------------------

def test_greeting_and_capability_offer_starttls_and_plain(stack):
    client = stack.imap()
    assert client.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 ")
    reply = client.send("a CAPABILITY")
    assert reply.endswith(b"a OK CAPABILITY completed\r\n")
    caps = capabilities(reply)
    assert {b"IMAP4rev1", b"STARTTLS", b"AUTH=PLAIN", b"LITERAL+", b"UIDPLUS"} <= caps
    assert b"LOGINDISABLED" not in caps


def test_no_starttls_without_certificates_or_once_tls(stack):
    assert b"STARTTLS" not in capabilities(stack.imap(certificates=False).greeting)
    assert b"STARTTLS" not in capabilities(stack.imap("implicit").greeting)


def test_login_answers_ok_with_the_new_capabilities(stack, ann):
    client = stack.imap()
    reply = client.send(f"a LOGIN {ANN} secret")
    assert reply.startswith(b"a OK [CAPABILITY ") and b"STARTTLS" not in capabilities(reply)


@pytest.mark.parametrize("user, password", [(ANN, "wrong"), ("bob@example.test", "secret")])
def test_a_wrong_login_is_no_and_the_session_stays_unauthenticated(stack, ann, user, password):
    client = stack.imap()
    assert client.send(f"a LOGIN {user} {password}") == (
        b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")
    assert client.send("b SELECT INBOX") == b"b BAD Command not valid in this state\r\n"


def test_after_the_tls_cutover_login_needs_starttls(template, tmp_path):
    stack = sessions.Stack(template, tmp_path, tls_cutover=sessions.START - timedelta(days=1))
    try:
        stack.add_account(ANN, "secret")
        client = stack.imap()
        assert {b"LOGINDISABLED", b"STARTTLS"} <= capabilities(client.greeting)
        assert client.send(f"a LOGIN {ANN} secret").startswith(b"a NO [PRIVACYREQUIRED] ")
        assert client.send("b STARTTLS") == b"b OK Begin TLS negotiation now\r\n"
        assert client.transport.tls_started_with is sessions.TLS_OPTIONS
        assert client.send(f"c LOGIN {ANN} secret").startswith(b"c OK [CAPABILITY ")
    finally:
        stack.close()


def test_no_login_within_the_login_timeout_says_bye(stack):
    client = stack.imap()
    stack.clock.advance(30)
    client.send("a NOOP")             # busy, so not idle: the login deadline still holds
    stack.clock.advance(29)
    assert not client.closed
    stack.clock.advance(2)
    assert client.take() == b"* BYE No login in time\r\n" and client.closed


# --- syntax and state errors (RFC 3501 §2.2.2, §6) ---------------------------------------

@pytest.mark.parametrize("line, reply", [
    ("a FOO", b"a BAD Unknown command\r\n"),
    ("a LOGIN", b"a BAD Missing arguments\r\n"),
    ("a NOOP extra", None),
])
def test_bad_syntax_is_answered_bad_with_its_tag(stack, line, reply):
    client = stack.imap()
    answer = client.send(line)
    assert answer.startswith(b"a BAD ") and (reply is None or answer == reply)
    assert client.send("b NOOP") == b"b OK NOOP completed\r\n"     # and the session goes on


@pytest.mark.parametrize("line", ["s FETCH 1 FLAGS", "s STORE 1 +FLAGS (\\Seen)",
                                  "s SEARCH ALL", "s EXPUNGE", "s SELECT INBOX",
                                  "s APPEND INBOX {1+}\r\nx"])
def test_commands_of_a_later_state_are_bad_before_login(stack, line):
    assert stack.imap().send(line) == b"s BAD Command not valid in this state\r\n"


@pytest.mark.parametrize("line", ["s FETCH 1 FLAGS", "s STORE 1 +FLAGS (\\Seen)",
                                  "s SEARCH ALL", "s EXPUNGE", "s LOGIN a b"])
def test_selected_state_commands_are_bad_without_a_selected_folder(stack, ann, line):
    assert logged_in(stack).send(line) == b"s BAD Command not valid in this state\r\n"


@pytest.mark.parametrize("line, reply", [
    ("f FETCH x FLAGS", b"f BAD Expected a sequence set\r\n"),
    ("f SEARCH FOO", None), ("f STORE 1 FLAGS", None), ("f FETCH 1 (FLAGS", None)])
def test_bad_arguments_in_the_selected_state_are_bad(stack, ann, line, reply):
    client = selected(stack)
    answer = client.send(line)
    assert answer.startswith(b"f BAD ") and (reply is None or answer == reply)


def test_select_of_a_missing_folder_is_no(stack, ann):
    assert logged_in(stack).send("s SELECT Nowhere").startswith(b"s NO ")


# --- SELECT, FETCH, STORE, SEARCH, EXPUNGE -------------------------------------------------

def test_select_reports_the_folder(stack, ann):
    reply = logged_in(stack).send("s SELECT INBOX")
    assert b"* 3 EXISTS\r\n" in reply and b"* 3 RECENT\r\n" in reply
    assert b"* OK [UIDNEXT 4] " in reply and b"* OK [UIDVALIDITY " in reply
    assert reply.endswith(b"s OK [READ-WRITE] SELECT completed\r\n")


def test_fetch_reports_uid_size_and_flags(stack, ann):
    client = selected(stack)
    assert client.send("f FETCH 1:* (UID RFC822.SIZE FLAGS)") == (
        b"* 1 FETCH (UID 1 RFC822.SIZE %d FLAGS (\\Recent))\r\n" % len(ONE)
        + b"* 2 FETCH (UID 2 RFC822.SIZE %d FLAGS (\\Recent))\r\n" % len(TWO)
        + b"* 3 FETCH (UID 3 RFC822.SIZE %d FLAGS (\\Recent))\r\n" % len(THREE)
        + b"f OK FETCH completed\r\n")


def test_fetch_body_sends_the_stored_bytes_and_marks_seen_but_peek_does_not(stack, ann):
    client = selected(stack)
    assert client.send("f FETCH 2 BODY.PEEK[HEADER.FIELDS (SUBJECT)]") == (
        b"* 2 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: two\r\n\r\n)\r\n"
        b"f OK FETCH completed\r\n")
    assert b"\\Seen" not in client.send("g FETCH 2 FLAGS")
    assert client.send("h FETCH 2 BODY[]") == (
        b"* 2 FETCH (BODY[] {%d}\r\n" % len(TWO) + TWO + b" FLAGS (\\Seen \\Recent))\r\n"
        b"h OK FETCH completed\r\n")
    assert [sorted(m.flags) for m in stack.inbox(ann)][1] == ["\\Seen"]


def test_store_changes_the_stored_flags_and_reports_them(stack, ann):
    client = selected(stack)
    reply = client.send("t STORE 2 +FLAGS (\\Flagged $Work)").split(b"\r\n")
    assert reply[:2] == [   # a new keyword is announced first (RFC 3501 §7.2.6)
        b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
        b"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] "
        b"Flags permitted"]
    assert fetched_flags(reply[2]) == {b"\\Flagged", b"$Work", b"\\Recent"}
    assert reply[3:] == [b"t OK STORE completed", b""]
    assert client.send("u STORE 2 -FLAGS.SILENT (\\Flagged)") == b"u OK STORE completed\r\n"
    assert [sorted(m.flags) for m in stack.inbox(ann)][1] == ["$Work"]


def test_search_answers_sequence_numbers_and_uid_search_uids(stack, ann):
    client = selected(stack)
    client.send("t STORE 1 +FLAGS.SILENT (\\Seen)")
    assert client.send("a SEARCH SUBJECT two") == b"* SEARCH 2\r\na OK SEARCH completed\r\n"
    assert client.send("b SEARCH UNSEEN") == b"* SEARCH 2 3\r\nb OK SEARCH completed\r\n"
    assert client.send("c SEARCH FROM ann") == b"* SEARCH 1\r\nc OK SEARCH completed\r\n"
    client.send("d STORE 1 +FLAGS.SILENT (\\Deleted)", "e EXPUNGE")
    assert client.send("f UID SEARCH ALL") == b"* SEARCH 2 3\r\nf OK SEARCH completed\r\n"
    assert client.send("g SEARCH ALL") == b"* SEARCH 1 2\r\ng OK SEARCH completed\r\n"


def test_expunge_removes_the_deleted_from_the_store_and_renumbers(stack, ann):
    client = selected(stack)
    client.send("t STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    assert client.send("x EXPUNGE") == b"* 3 EXPUNGE\r\n* 1 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    assert [m.uid for m in stack.inbox(ann)] == [2]
    assert client.send("f FETCH 1 UID") == b"* 1 FETCH (UID 2)\r\nf OK FETCH completed\r\n"


def test_examine_is_read_only(stack, ann):
    client = logged_in(stack)
    assert client.send("e EXAMINE INBOX").endswith(b"e OK [READ-ONLY] EXAMINE completed\r\n")
    assert client.send("t STORE 1 +FLAGS (\\Deleted)") == (
        b"t NO [READ-ONLY] Mailbox is read-only\r\n")
    assert all(not m.flags for m in stack.inbox(ann))


def test_another_sessions_expunge_is_announced_at_the_next_command(stack, ann):
    """The folder watch wakes the view: even a command that does not poll (NOOP does)
    brings the news (RFC 3501 §7.4.1)."""
    watcher, writer = selected(stack), selected(stack)
    writer.send("t STORE 2 +FLAGS.SILENT (\\Deleted)", "x EXPUNGE")
    assert watcher.send("n STATUS Sent (MESSAGES)") == (
        b"* STATUS Sent (MESSAGES 0)\r\n* 2 EXPUNGE\r\nn OK STATUS completed\r\n")
    assert watcher.send("f FETCH 2 UID") == b"* 2 FETCH (UID 3)\r\nf OK FETCH completed\r\n"


def test_a_store_failure_is_a_temporary_no(stack, ann):
    client = selected(stack)
    stack.pool.failing.add(condstore.store_flags)
    assert client.send("t STORE 1 +FLAGS (\\Seen)") == (
        b"t NO [UNAVAILABLE] Temporary server problem; try again later\r\n")
    stack.pool.failing.clear()
    assert client.send("u STORE 1 +FLAGS (\\Seen)").endswith(b"u OK STORE completed\r\n")


# --- APPEND, LOGOUT -------------------------------------------------------------------------

def test_append_with_a_synchronising_literal_is_stored_and_answers_appenduid(stack, ann):
    client = logged_in(stack)
    message = b"Subject: appended\r\n\r\nnew body\r\n"
    assert client.send_raw(b"a APPEND INBOX (\\Seen) {%d}\r\n" % len(message)) == (
        b"+ Ready for literal data\r\n")
    reply = client.send_raw(message + b"\r\n")
    assert re.fullmatch(rb"a OK \[APPENDUID \d+ 4\] APPEND completed\r\n", reply)
    stored = stack.inbox(ann)[-1]
    assert (stored.uid, stored.size, stored.flags) == (4, len(message), frozenset({"\\Seen"}))


def test_append_to_a_missing_folder_is_no_trycreate(stack, ann):
    client = logged_in(stack)
    assert client.send("a APPEND Nowhere {1+}\r\nx").startswith(b"a NO [TRYCREATE] ")
    assert len(stack.inbox(ann)) == 3


def test_logout_says_bye_then_ok_and_closes(stack, ann):
    client = selected(stack)
    assert client.send("z LOGOUT") == b"* BYE mailstack logging out\r\nz OK LOGOUT completed\r\n"
    assert client.closed


# --- AUTHENTICATE PLAIN (RFC 4959 SASL-IR), folders, COPY/MOVE, CLOSE, IDLE ------------

def sasl(authzid: str, user: str, password: str) -> str:
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode()).decode()


def test_authenticate_plain_with_and_without_an_initial_response(stack, ann):
    assert stack.imap().send(f"a AUTHENTICATE PLAIN {sasl('', ANN, 'secret')}").startswith(
        b"a OK [CAPABILITY ")
    client = stack.imap()
    assert client.send("a AUTHENTICATE PLAIN") == b"+ \r\n"
    assert client.send(sasl("", ANN, "secret")).startswith(b"a OK [CAPABILITY ")


@pytest.mark.parametrize("response, reply", [
    ("*", b"a BAD AUTHENTICATE cancelled\r\n"),
    ("!!!", b"a BAD Invalid base64 in the SASL response\r\n"),
    (sasl("bob@example.test", ANN, "secret"),
     b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n")])
def test_authenticate_refusals(stack, ann, response, reply):
    stack.add_account("bob@example.test", "other")
    client = stack.imap()
    assert client.send("a AUTHENTICATE PLAIN", response) == b"+ \r\n" + reply
    assert client.send("b SELECT INBOX") == b"b BAD Command not valid in this state\r\n"


def test_create_rename_delete_and_list_folders(stack, ann):
    client = logged_in(stack)
    assert client.send("c CREATE Work/Sub") == b"c OK CREATE completed\r\n"
    assert client.send('l LIST "" Work*') == (
        b'* LIST (\\HasChildren) "/" Work\r\n* LIST (\\HasNoChildren) "/" Work/Sub\r\n'
        b"l OK LIST completed\r\n")
    assert client.send("r RENAME Work Jobs") == b"r OK RENAME completed\r\n"
    assert client.send("d DELETE Jobs/Sub") == b"d OK DELETE completed\r\n"
    assert client.send("e DELETE Nowhere") == b"e NO [NONEXISTENT] No such mailbox\r\n"
    assert client.send('m LIST "" Jobs*') == (
        b'* LIST (\\HasNoChildren) "/" Jobs\r\nm OK LIST completed\r\n')


def test_status_subscribe_namespace_and_quota_root(stack, ann):
    client = logged_in(stack)
    assert client.send("s STATUS INBOX (MESSAGES UNSEEN UIDNEXT)") == (
        b"* STATUS INBOX (MESSAGES 3 UNSEEN 3 UIDNEXT 4)\r\ns OK STATUS completed\r\n")
    client.send("c CREATE Lists")
    assert client.send("u SUBSCRIBE Lists") == b"u OK SUBSCRIBE completed\r\n"
    assert b'* LSUB () "/" Lists\r\n' in client.send('l LSUB "" "*"')
    assert client.send("v UNSUBSCRIBE Lists") == b"v OK UNSUBSCRIBE completed\r\n"
    assert b"Lists" not in client.send('l LSUB "" "*"')
    assert client.send("n NAMESPACE") == (
        b'* NAMESPACE (("" "/")) NIL NIL\r\nn OK NAMESPACE completed\r\n')
    assert client.send("q GETQUOTAROOT INBOX").endswith(b"q OK GETQUOTAROOT completed\r\n")
    assert client.send('i ID ("name" "test")') == (
        b'* ID ("name" "mailstack" "vendor" "mailstack")\r\ni OK ID completed\r\n')


def test_copy_and_move_answer_copyuid_and_move_expunges(stack, ann):
    client = selected(stack)
    assert re.fullmatch(rb"c OK \[COPYUID \d+ 1 1\] COPY completed\r\n",
                        client.send("c COPY 1 Sent"))
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 2 1\] Moved\r\n\* 2 EXPUNGE\r\n"
                        rb"m OK MOVE completed\r\n", client.send("m MOVE 2 Trash"))
    assert [m.uid for m in stack.inbox(ann)] == [1, 3]
    assert client.send("s STATUS Trash (MESSAGES)").startswith(b"* STATUS Trash (MESSAGES 1)")


def test_uid_expunge_removes_only_the_named_uids(stack, ann):
    client = selected(stack)
    client.send("t STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    assert client.send("x UID EXPUNGE 2") == b"* 2 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    assert [m.uid for m in stack.inbox(ann)] == [1, 3]


def test_close_expunges_silently_and_unselect_does_not(stack, ann):
    client = selected(stack)
    client.send("t STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert client.send("u UNSELECT") == b"u OK UNSELECT completed\r\n"
    assert len(stack.inbox(ann)) == 3
    client.send("s SELECT INBOX")
    assert client.send("c CLOSE") == b"c OK CLOSE completed\r\n"
    assert [m.uid for m in stack.inbox(ann)] == [2, 3]
    assert client.send("f FETCH 1 UID") == b"f BAD Command not valid in this state\r\n"


def test_idle_pushes_another_sessions_change_until_done(stack, ann):
    client = selected(stack)
    assert client.send("i IDLE") == b"+ idling\r\n"
    other = selected(stack)
    other.send("t STORE 3 +FLAGS.SILENT (\\Deleted)", "x EXPUNGE")
    assert client.take() == b"* 3 EXPUNGE\r\n"
    assert client.send("DONE") == b"i OK IDLE terminated\r\n"
