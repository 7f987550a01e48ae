"""parse_command: tags, every command but FETCH (test_imap_fetch_items), every refusal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from mailstack.message.spool import spooled
from mailstack.protocols.imap_commands import (
    Append, Authenticate, Command, CopyMessages, Create, Enable, Expunge, GetQuota, Id,
    ListMailboxes, Login, Lsub, MailboxCommand, Rename, Search, Select, SetQuota, Status, Store,
)
from mailstack.protocols.imap_parser import parse_command
from mailstack.protocols.imap_search_grammar import BadCharset, Recent
from mailstack.protocols.imap_tokens import ParseError
from mailstack.protocols.imap_utf7 import BadMailboxName
from mailstack.store.search_criteria import And, Flag, Header, Uids


def bad(raw: bytes, error=ParseError) -> ParseError:
    with pytest.raises(error) as caught:
        parse_command(raw)
    return caught.value


# --- tags and command names -----------------------------------------------------------------------

@pytest.mark.parametrize("tag", [b"a1", b"A.1", b"1.2", b"x]", b"~!#$&'-_", b"TAG" * 20])
def test_tags_of_astring_chars_except_plus(tag):
    assert parse_command(tag + b" NOOP") == Command(tag=tag, name="NOOP")


@pytest.mark.parametrize("raw", [b"+ NOOP", b"a+b NOOP", b"* NOOP", b"a*b NOOP", b"(a NOOP",
                                 b'"a" NOOP', b"a{1 NOOP", b"a%b NOOP", b"\\a NOOP", b" NOOP",
                                 b"", b"\xc3\xa4 NOOP", b"a\x01 NOOP", b"a\tNOOP"])
def test_unreadable_tags_are_bad_without_a_tag(raw):
    assert bad(raw).tag is None


def test_errors_after_the_tag_carry_it():
    assert bad(b"t1").tag == b"t1"
    assert bad(b"t2 ").tag == b"t2"
    assert bad(b"t3 FETCH 0 FLAGS").tag == b"t3"
    assert bad(b"t4 SEARCH CHARSET KOI8-R ALL", BadCharset).tag == b"t4"
    assert bad(b"t5 SELECT \xc3\xa4", ParseError).tag == b"t5"


def test_unknown_commands_are_bad():
    for raw in (b"a FOO", b"a UID FOO 1", b"a UID LIST", b"a UID", b"a SORT (DATE) UTF-8 ALL",
                b"a THREAD REFERENCES UTF-8 ALL", b"a X-FOO", b"a FETCH(1)"):
        error = bad(raw)
        assert error.tag == b"a"
    assert bad(b"a FOO").text == "Unknown command"


@pytest.mark.parametrize("name", ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE",
                                  "UNSELECT", "IDLE", "NAMESPACE"])
def test_commands_without_arguments_in_any_case(name):
    assert parse_command(b"a " + name.lower().encode()) == Command(tag=b"a", name=name)
    assert parse_command(b"a " + name.encode() + b"  ") == Command(tag=b"a", name=name)
    bad(b"a " + name.encode() + b" x")


def test_expunge_and_uid_expunge():
    assert parse_command(b"a EXPUNGE") == Expunge(tag=b"a", name="EXPUNGE")
    bad(b"a EXPUNGE 1:3")
    command = parse_command(b"a UID EXPUNGE 3:5,9")
    assert command.uid and command.sequence.ranges == ((3, 5), (9, 9))
    bad(b"a UID EXPUNGE")


def test_a_crlf_left_at_the_end_is_bad():
    bad(b"a NOOP\r\n")


# --- login and session ---------------------------------------------------------------------------

def test_login_with_atoms_quoted_and_literals():
    assert parse_command(b'a1 LOGIN user "p a\\"ss"') == Login(
        tag=b"a1", name="LOGIN", user=b"user", password=b'p a"ss')
    command = parse_command(b"a1 LOGIN {4}\r\nuser {6+}\r\nsecret")
    assert (command.user, command.password) == (b"user", b"secret")


def test_login_password_may_be_utf8_quoted():
    assert parse_command('a LOGIN u "pässwörd"'.encode()).password == "pässwörd".encode()


@pytest.mark.parametrize("marker", [b"{+5}", b"{5_0}", b"{ 5}", b"{-1}", b"{05 }", b"{5 +}"])
def test_literal_markers_that_fooled_twisted_are_bad(marker):
    assert bad(b"a LOGIN " + marker + b"\r\nhello world").tag == b"a"


def test_literal_longer_than_the_command_is_bad():
    assert "Literal longer" in bad(b"a LOGIN {50}\r\nuser pass").text


@pytest.mark.parametrize("raw", [b"a LOGIN", b"a LOGIN user", b"a LOGIN user  pass",
                                 b"a LOGIN (user) pass", b"a LOGIN user pass extra"])
def test_login_malformed(raw):
    bad(raw)


def test_authenticate_with_and_without_initial_response():
    assert parse_command(b"a AUTHENTICATE plain") == Authenticate(
        tag=b"a", name="AUTHENTICATE", mechanism="PLAIN", initial=None)
    assert parse_command(b"a AUTHENTICATE PLAIN AHVzZXIAcGFzcw==").initial == b"AHVzZXIAcGFzcw=="
    assert parse_command(b"a AUTHENTICATE PLAIN =").initial == b""
    for raw in (b"a AUTHENTICATE PLAIN abc", b"a AUTHENTICATE PLAIN ab!d", b"a AUTHENTICATE",
                b"a AUTHENTICATE PLAIN ==", b"a AUTHENTICATE PLAIN YQ= x"):
        bad(raw)


def test_id_pairs_and_nil():
    assert parse_command(b'a ID ("name" "Thunderbird" "version" NIL)') == Id(
        tag=b"a", name="ID", params=((b"name", b"Thunderbird"), (b"version", None)))
    assert parse_command(b"a ID NIL").params is None
    assert parse_command(b"a ID ()").params == ()
    assert parse_command(b'a ID ({4}\r\nname "x")').params == ((b"name", b"x"),)
    for raw in (b'a ID ("name")', b"a ID (name x)", b'a ID ("a" "b" )', b'a ID "a" "b"',
                b"a ID", b'a ID (NIL "x")'):
        bad(raw)


def test_id_at_rfc_limits_and_beyond_is_clipped_not_refused():
    """imaptest's ``id`` sends 30 pairs of 30-octet fields and 1,024-octet values."""
    pairs = b" ".join(b'"%s" "%s"' % (b"f%02d" % i + b"x" * 27, b"v" * 1024) for i in range(30))
    assert len(parse_command(b"a ID (" + pairs + b")").params) == 30
    big = b" ".join(b'"%s" "%s"' % (b"f" * 100, b"v" * 5000) for _ in range(40))
    params = parse_command(b"a ID (" + big + b")").params
    assert len(params) == 30 and {(len(k), len(v)) for k, v in params} == {(30, 1024)}


def test_enable():
    assert parse_command(b"a ENABLE condstore UTF8=ACCEPT") == Enable(
        tag=b"a", name="ENABLE", capabilities=("CONDSTORE", "UTF8=ACCEPT"))
    bad(b"a ENABLE")
    bad(b"a ENABLE (X)")


# --- mailboxes -----------------------------------------------------------------------------------

def test_select_examine_with_inbox_in_any_case_and_params():
    assert parse_command(b"a SELECT inbox") == Select(
        tag=b"a", name="SELECT", mailbox="INBOX", read_only=False)
    command = parse_command(b'a EXAMINE "Sent" (CONDSTORE)')
    assert (command.name, command.mailbox, command.read_only, command.params) == (
        "EXAMINE", "Sent", True, ("CONDSTORE",))
    qresync = parse_command(b"a SELECT a (QRESYNC (7 20 1:5,9 (1:3 2:4)))").qresync
    assert (qresync.uidvalidity, qresync.modseq) == (7, 20)
    assert qresync.known_uids.ranges == ((1, 5), (9, 9))
    assert [s.ranges for s in qresync.seq_match] == [((1, 3),), ((2, 4),)]
    assert parse_command(b"a SELECT a (QRESYNC (7 20))").qresync.known_uids is None
    assert parse_command(b"a SELECT a (QRESYNC (7 20 (1 2)))").qresync.known_uids is None
    for raw in (b"a SELECT", b"a SELECT a b", b"a SELECT a ()", b"a SELECT a (QRESYNC (1))",
                b"a SELECT a (QRESYNC (0 2))", b"a SELECT a (QRESYNC (1 0))",
                b"a SELECT a (QRESYNC (1 2 x))", b"a SELECT a (QRESYNC (1 2) QRESYNC (1 2))",
                b"a SELECT a (QRESYNC (1 2 1:3 (1:2)))"):
        bad(raw)


def test_mailbox_names_decode_from_modified_utf7():
    assert parse_command(b'a SELECT "p&AOQA5A-"').mailbox == "pää"
    assert parse_command(b"a DELETE Inbox/sub").mailbox == "Inbox/sub"      # only INBOX itself
    assert isinstance(bad(b'a SELECT "p\xc3\xa4"', BadMailboxName), BadMailboxName)
    bad(b"a CREATE a&b", BadMailboxName)


def test_mailbox_atoms_may_hold_every_astring_char():
    """imaptest ``atoms``: ``select !#$&'+,-.0123456789:;<=>?@^_`|[}`` must parse (its
    answer is NO: the name is not modified UTF-7 here), and ``~foo`` is an atom."""
    assert parse_command(b"a SELECT ~foo").mailbox == "~foo"
    assert parse_command(b"a SELECT a]b").mailbox == "a]b"
    bad(b"a SELECT !#$&'+,-.0123456789:;<=>?@^_`|[}", BadMailboxName)
    assert parse_command(b"a SELECT !#$&-'+,-.0123456789:;<=>?@^_`|[}").mailbox == (
        "!#$&'+,-.0123456789:;<=>?@^_`|[}")
    for special in (b"(", b")", b"{", b"%", b"*", b'"', b"\\"):
        bad(b"a SELECT a" + special + b"b")


def test_create_with_special_use():
    assert parse_command(b"a CREATE Drafts (USE (\\Drafts))") == Create(
        tag=b"a", name="CREATE", mailbox="Drafts", use=("\\Drafts",))
    assert parse_command(b"a CREATE x (USE ())").use == ()
    assert parse_command(b'a create "x/y"').mailbox == "x/y"
    for raw in (b"a CREATE x (FOO (\\Drafts))", b"a CREATE x (USE Drafts)",
                b"a CREATE x (USE (Drafts))", b"a CREATE x (USE (\\Drafts)", b"a CREATE"):
        bad(raw)


def test_delete_subscribe_unsubscribe_getquotaroot_rename():
    for name in ("DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT"):
        assert parse_command(b"a " + name.encode() + b' "a b"') == MailboxCommand(
            tag=b"a", name=name, mailbox="a b", raw_mailbox=b"a b")
    assert parse_command(b'a RENAME old "n&AOQ-w"') == Rename(
        tag=b"a", name="RENAME", old="old", new="näw")
    bad(b"a RENAME old")
    bad(b"a DELETE a b")


def test_status_items_and_raw_name_for_the_echo():
    command = parse_command(b'a STATUS "p&AOQ-" (messages UIDNEXT uidvalidity Unseen recent '
                            b"SIZE DELETED deleted-storage highestmodseq)")
    assert command == Status(tag=b"a", name="STATUS", mailbox="pä", raw_mailbox=b"p&AOQ-",
                             items=("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT",
                                    "SIZE", "DELETED", "DELETED-STORAGE", "HIGHESTMODSEQ"))
    for raw in (b"a STATUS x (FOO)", b"a STATUS x ()", b"a STATUS x MESSAGES",
                b"a STATUS x (NOMODSEQ)", b"a STATUS x"):
        bad(raw)


def test_quota_commands():
    assert parse_command(b'a GETQUOTA ""') == GetQuota(tag=b"a", name="GETQUOTA", root=b"")
    assert parse_command(b'a SETQUOTA "" (STORAGE 512 message 10)') == SetQuota(
        tag=b"a", name="SETQUOTA", root=b"", limits=(("STORAGE", 512), ("MESSAGE", 10)))
    assert parse_command(b'a SETQUOTA "" ()').limits == ()
    bad(b'a SETQUOTA "" (STORAGE)')
    bad(b'a SETQUOTA "" (STORAGE -1)')


# --- LIST and LSUB -------------------------------------------------------------------------------

def test_list_basic_forms():
    assert parse_command(b'a LIST "" %') == ListMailboxes(
        tag=b"a", name="LIST", reference="", patterns=("%",))
    assert parse_command(b'a list "" ""').patterns == ("",)
    assert parse_command(b"a LIST testbox/ *").reference == "testbox/"
    assert parse_command(b'a LIST "" testbox/%t*4').patterns == ("testbox/%t*4",)
    assert parse_command(b'a LIST "" {3}\r\na%*').patterns == ("a%*",)


def test_list_nil_is_the_pattern_nil():
    """RFC 3501 §9: list-mailbox = 1*list-char / string, and NIL is three list-chars;
    Dovecot's imaptest ``nil`` expects ``LIST "" NIL`` to be answered OK."""
    assert parse_command(b'a LIST "" NIL').patterns == ("NIL",)
    assert parse_command(b"a LIST NIL nil").reference == "NIL"


def test_list_pattern_with_every_atom_special_character():
    # Quoted, every special is fine (quote and backslash escaped).
    command = parse_command(b'a LIST "" "%*()\\"]{\\\\ x"')
    assert command.patterns == ('%*()"]{\\ x',)
    # As an atom, % * ] are list-chars; the other atom-specials end or break the atom.
    assert parse_command(b'a LIST "" a%b*c]d').patterns == ("a%b*c]d",)
    for special in (b"(", b")", b"{", b'"', b"\\"):
        bad(b'a LIST "" a' + special + b"b")
    # imaptest ``atoms``: every ATOM-CHAR and both wildcards, not modified UTF-7.
    command = parse_command(b"a list \"\" !#$&'+,-.0123456789:;<=>?@^_`|[}%*")
    assert command.patterns == ("!#$&'+,-.0123456789:;<=>?@^_`|[}%*",)


def test_list_extended_rfc5258():
    command = parse_command(b'a LIST (SUBSCRIBED RecursiveMatch) "" (a* "b c") '
                            b"RETURN (children SPECIAL-USE)")
    assert command == ListMailboxes(
        tag=b"a", name="LIST", reference="", patterns=("a*", "b c"),
        selection=("SUBSCRIBED", "RECURSIVEMATCH"), returns=("CHILDREN", "SPECIAL-USE"),
        extended=True)
    assert parse_command(b'a LIST () "" ""').extended
    assert parse_command(b'a LIST (SPECIAL-USE) "" *').selection == ("SPECIAL-USE",)
    assert parse_command(b'a LIST "" * RETURN ()').returns == ()
    assert parse_command(b'a LIST "" * RETURN (SPECIAL-USE)').extended
    assert not parse_command(b'a LIST "" *').extended


@pytest.mark.parametrize("raw", [
    b'a list (imaptest) "" ""', b'a list (recursivematch) "" ""',       # imaptest ``listext``
    b'a list (recursivematch remote) "" ""', b'a list "" "" return (imaptest)',
    b'a LIST "" * RETURN (STATUS (MESSAGES))', b'a LIST "" * RETURN', b'a LIST "" * FOO ()',
    b'a LIST "" ()', b'a LIST ""', b"a LIST", b'a LIST ""  *', b'a LIST "" * x',
    b'a LIST "" (a  b)', b'a LIST (SUBSCRIBED) ""',
])
def test_list_malformed(raw):
    bad(raw)


def test_lsub():
    assert parse_command(b'a LSUB "" *test') == Lsub(tag=b"a", name="LSUB", reference="",
                                                    pattern="*test")
    bad(b'a LSUB "" (a b)')
    bad(b'a LSUB (SUBSCRIBED) "" *')


# --- APPEND --------------------------------------------------------------------------------------

def test_append_with_flags_and_date():
    command = parse_command(b'a APPEND "Sent" (\\seen $Forwarded) "24-Mar-2007 23:00:00 +0200" '
                            b"{5+}\r\nhello")
    plus2 = timezone(timedelta(hours=2))
    assert command == Append(tag=b"a", name="APPEND", mailbox="Sent",
                             flags=("\\Seen", "$Forwarded"),
                             date=datetime(2007, 3, 24, 23, 0, tzinfo=plus2), message=b"hello")


def test_append_minimal_and_empty_flags():
    command = parse_command(b"a APPEND INBOX {2}\r\nhi")
    assert (command.flags, command.date, command.message) == ((), None, b"hi")
    assert parse_command(b"a APPEND x () {1}\r\nx").flags == ()


@pytest.mark.parametrize("day, expected", [(b" 1", 1), (b"01", 1), (b"1", 1), (b"31", 31)])
def test_append_date_day_may_be_space_padded(day, expected):
    raw = b'a APPEND x "' + day + b'-jan-2020 00:00:00 -0530" {1}\r\nx'
    when = parse_command(raw).date
    assert when.day == expected and when.utcoffset() == -timedelta(hours=5, minutes=30)


@pytest.mark.parametrize("when", [b"32-Jan-2020 00:00:00 +0000", b"1-Foo-2020 00:00:00 +0000",
                                  b"1-Jan-2020 24:00:00 +0000", b"1-Jan-2020 00:00:00 +2500",
                                  b"1-Jan-2020 00:00:00 +0060", b"1-Jan-2020 00:00:00",
                                  b"1-Jan-2020  00:00:00 +0000", b"2020-01-01T00:00:00Z",
                                  b"29-Feb-2021 00:00:00 +0000", b"  1-Jan-2020 00:00:00 +0000"])
def test_append_bad_dates_are_bad(when):
    bad(b'a APPEND x "' + when + b'" {1}\r\nx')


@pytest.mark.parametrize("raw", [
    b'a APPEND x "the message"', b"a APPEND x (\\Seen) hello", b"a APPEND x ~{5}\r\nhello",
    b"a APPEND x {1}\r\nx {1}\r\ny", b"a APPEND x (\\Recent) {1}\r\nx", b"a APPEND x",
    b"a APPEND x {5}\r\nhi", b"a APPEND x (\\Seen){1}\r\nx",
])
def test_append_malformed(raw):
    bad(raw)


def test_an_append_message_in_a_spool_is_read_from_it_at_its_position():
    """The framing keeps a large literal's octets in a spool (imap_framing.Command.spooled)."""
    head = b"a APPEND Drafts (\\Seen) {5}\r\n"
    spool = spooled(b"hello")
    command = parse_command(head, {len(head): spool})
    assert command.message is spool and command.flags == ("\\Seen",)
    assert parse_command(head + b"hello", {}).message == b"hello"


@pytest.mark.parametrize("raw, spooled_at", [
    (b"a APPEND {5}\r\n {1}\r\nx", len(b"a APPEND {5}\r\n")),   # as the mailbox name
    (b"a APPEND x {6}\r\n", len(b"a APPEND x {6}\r\n")),           # not the size announced
    (b"a LOGIN {5}\r\n pw", len(b"a LOGIN {5}\r\n")),
])
def test_a_spooled_literal_anywhere_but_an_append_message_is_refused(raw, spooled_at):
    with pytest.raises(ParseError):
        parse_command(raw, {spooled_at: spooled(b"hello")})


# --- STORE ---------------------------------------------------------------------------------------

def test_store_forms():
    command = parse_command(b"a STORE 1:3 +FLAGS.SILENT (\\seen \\FLAGGED $Label1)")
    assert command == Store(tag=b"a", name="STORE", sequence=command.sequence, mode="+",
                            silent=True, flags=("\\Seen", "\\Flagged", "$Label1"))
    assert parse_command(b"a STORE 4 -flags \\seen").mode == "-"
    replaced = parse_command(b"a uid store 1,3 FLAGS \\Deleted \\Answered \\Draft ")
    assert (replaced.uid, replaced.mode, replaced.silent, replaced.flags) == (
        True, "=", False, ("\\Deleted", "\\Answered", "\\Draft"))
    assert parse_command(b"a STORE 1 FLAGS ()").flags == ()
    assert parse_command(b"a STORE 1 +FLAGS NIL").flags == ("NIL",)        # imaptest ``nil``
    assert parse_command(b"a STORE 1 (UNCHANGEDSINCE 12) FLAGS (x)").unchanged_since == 12


@pytest.mark.parametrize("raw", [
    b"a STORE 1 +FLAGS (\\Recent)", b"a STORE 1 FLAGS \\recent", b"a STORE 1 FLAGS (\\Foo)",
    b"a STORE 1 FLAGS (\\*)", b"a STORE 1 FLAGS", b"a STORE 1 +FLAGS.LOUD (x)",
    b"a STORE 1 *FLAGS (x)", b"a STORE 1 FLAGS ((x))", b"a STORE 1 FLAGS (x  y)",
    b'a STORE 1 FLAGS ("x")', b"a STORE 1 FLAGS (x", b"a STORE 0 FLAGS (x)",
    b"a STORE 1 (FOO 1) FLAGS (x)", b"a STORE 1 X-GM-LABELS (x)", b"a STORE 1 FLAGS x]",
])
def test_store_malformed(raw):
    bad(raw)


# --- COPY, MOVE, SEARCH ---------------------------------------------------------------------------

def test_copy_and_move_with_and_without_uid():
    command = parse_command(b"a UID MOVE 1:* Trash")
    assert command == CopyMessages(tag=b"a", name="MOVE", uid=True, sequence=command.sequence,
                                   mailbox="Trash")
    assert command.sequence.ranges == ((1, None),)
    copy = parse_command(b'a copy 1:2,4 "testbox2"')
    assert (copy.name, copy.uid, copy.mailbox) == ("COPY", False, "testbox2")
    for raw in (b"a COPY 1", b"a COPY x box", b"a MOVE 1 a b"):
        bad(raw)


def test_search_and_uid_search():
    command = parse_command(b"a UID SEARCH CHARSET UTF-8 UNSEEN NEW subject {3+}\r\nabc")
    assert command == Search(tag=b"a", name="SEARCH", uid=True, charset="UTF-8",
                             criteria=And((Flag("\\Seen", False), Recent(True),
                                           Flag("\\Seen", False), Header("subject", "abc"))))
    assert parse_command(b"a SEARCH uid 5:*").criteria == Uids(((5, None),))
    assert parse_command(b"a SEARCH uid 5:*").returns is None              # plain SEARCH
    assert parse_command(b"a SEARCH RETURN (min COUNT min) ALL").returns == ("MIN", "COUNT")
    assert parse_command(b"a UID SEARCH RETURN () CHARSET UTF-8 ALL").returns == ("ALL",)
    bad(b"a SEARCH RETURN (SAVE) ALL")              # SEARCHRES is not offered
    bad(b"a SEARCH RETURN ALL")
    bad(b"a SEARCH")
    bad(b"a SEARCH CHARSET BIG5 ALL", BadCharset)


def test_search_depth_bomb_is_a_parse_error():
    assert bad(b"a SEARCH " + b"(" * 3900 + b"ALL" + b")" * 3900).tag == b"a"
