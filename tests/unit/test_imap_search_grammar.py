"""SEARCH keys into the store's criteria tree, \\Recent resolution, charsets and bombs."""

from __future__ import annotations

from datetime import date

import pytest

from mailstack.protocols.imap_search_grammar import (
    MAX_KEYS, BadCharset, Recent, parse_search, resolve_recent,
)
from mailstack.protocols.imap_tokens import ParseError, Reader
from mailstack.store.search_criteria import (
    All, And, Date, Flag, Header, Keyword, Modseq, Not, Nothing, Or, Seqs, Size, Text, Uids,
)

UNSEEN = Flag("\\Seen", False)


def keys(raw: bytes):
    return parse_search(Reader(raw))[1]


@pytest.mark.parametrize("raw, tree", [
    (b"ALL", All()),
    (b"answered", Flag("\\Answered")),
    (b"UNDELETED", Flag("\\Deleted", False)),
    (b"draft undraft flagged unflagged seen unseen",
     And((Flag("\\Draft"), Flag("\\Draft", False), Flag("\\Flagged"), Flag("\\Flagged", False),
          Flag("\\Seen"), UNSEEN))),
    (b"keyword $hello", Keyword("$hello")),
    (b"UNKEYWORD NIL", Keyword("NIL", False)),
    (b"larger 100", Size("larger", 100)),
    (b"SMALLER 4294967295", Size("smaller", 4294967295)),
    (b"before 1-Feb-1994", Date("internal", "before", date(1994, 2, 1))),
    (b'ON "24-mar-2007"', Date("internal", "on", date(2007, 3, 24))),
    (b"sentsince 01-JAN-2000", Date("sent", "since", date(2000, 1, 1))),
    (b"SENTBEFORE 29-Feb-2024", Date("sent", "before", date(2024, 2, 29))),
    (b"from user-from@domain.org", Header("from", "user-from@domain.org")),
    (b'subject "hello beautiful"', Header("subject", "hello beautiful")),
    (b"subject NIL", Header("subject", "NIL")),
    (b'header x-extra ""', Header("x-extra", "")),
    (b"body asdf", Text("body", "asdf")),
    (b"TEXT {5+}\r\nqwert", Text("text", "qwert")),
    (b"uid 1:4294967295", Uids(((1, 4294967295),))),
    (b"*:3", Seqs(((3, None),))),
    (b"1:3,5 not uid 3", And((Seqs(((1, 3), (5, 5))), Not(Uids(((3, 3),)))))),
    (b"or 1 uid 3", Or(Seqs(((1, 1),)), Uids(((3, 3),)))),
    (b"(3) uid 4", And((Seqs(((3, 3),)), Uids(((4, 4),))))),
    (b"3 (uid 4)", And((Seqs(((3, 3),)), Uids(((4, 4),))))),
    (b"not not seen", Flag("\\Seen")),
    (b"not all", Nothing()),
    (b"or all seen", All()),
])
def test_search_keys_become_the_store_tree(raw, tree):
    assert keys(raw) == tree


def test_recent_new_old_become_recent_nodes():
    assert keys(b"RECENT") == Recent(True)
    assert keys(b"OLD") == Recent(False)
    assert keys(b"not recent") == Recent(False)
    assert keys(b"NEW") == And((Recent(True), UNSEEN))


def test_resolve_recent_replaces_recent_by_uid_ranges():
    recent = frozenset({3, 4, 5, 9})
    ranges = Uids(((3, 5), (9, 9)))
    assert resolve_recent(keys(b"recent"), recent) == ranges
    assert resolve_recent(keys(b"old"), recent) == Not(ranges)
    assert resolve_recent(keys(b"new"), recent) == And((ranges, UNSEEN))
    assert resolve_recent(keys(b"or new deleted"), recent) == Or(And((ranges, UNSEEN)),
                                                                 Flag("\\Deleted"))


def test_resolve_recent_with_nothing_recent_simplifies():
    assert resolve_recent(keys(b"new"), frozenset()) == Nothing()
    assert resolve_recent(keys(b"old"), frozenset()) == All()
    assert resolve_recent(keys(b"or recent seen"), frozenset()) == Flag("\\Seen")
    assert resolve_recent(keys(b"seen"), frozenset({1})) == Flag("\\Seen")


def test_charset_us_ascii_and_utf8_in_any_case():
    assert parse_search(Reader(b"CHARSET utf-8 ALL")) == ("UTF-8", All())
    assert parse_search(Reader(b'charset "US-ASCII" seen'))[0] == "US-ASCII"
    assert parse_search(Reader(b"seen"))[0] is None


def test_other_charsets_are_bad_charset_not_bad():
    with pytest.raises(BadCharset):
        parse_search(Reader(b"CHARSET ISO-8859-1 SUBJECT x"))
    assert issubclass(BadCharset, ParseError)


def test_literal_needles_decode_as_utf8_with_replacement():
    assert keys("CHARSET UTF-8 SUBJECT {6}\r\nGrüß".encode()) == Header("subject", "Grüß")
    assert keys(b"BODY {3}\r\na\xffb") == Text("body", "a\ufffdb")


def test_modseq_key_with_and_without_an_entry():
    """RFC 7162 §3.1.5: the entry name and type narrow nothing (one modseq per message)."""
    assert keys(b"MODSEQ 5") == Modseq(5)
    assert keys(b'MODSEQ "/flags/\\\\draft" all 620162338 SEEN') == And(
        (Modseq(620162338), Flag("\\Seen", True)))


@pytest.mark.parametrize("raw", [
    b"", b"FOO", b"RETURN (MIN) ALL", b"seen  flagged", b"(seen", b"seen)", b"()",
    b"keyword \\Seen", b"larger", b"larger -1", b"larger 4294967296", b"before 30-Feb-2020",
    b"before 1-Foo-2020", b"since 2020-01-01", b"header from:x y", b"header", b"not", b"or seen",
    b"uid x", b"0:3", b"subject " + b"x" * 4097, b"CHARSET", b"MODSEQ x", b"MODSEQ -1",
    b'MODSEQ "/flags/x" none 5', b'MODSEQ "/flags/x" 5', b"OLDER 5",
])
def test_malformed_search_keys_are_bad(raw):
    with pytest.raises(ParseError):
        keys(raw)


def test_3900_nested_parentheses_are_a_parse_error_not_recursion_error():
    with pytest.raises(ParseError):
        keys(b"(" * 3900 + b"ALL" + b")" * 3900)
    with pytest.raises(ParseError):
        keys(b"NOT " * 3900 + b"ALL")
    with pytest.raises(ParseError):
        keys(b"OR " * 3900 + b"SEEN " * 3901)


def test_32_levels_are_allowed():
    assert keys(b"(" * 31 + b"SEEN" + b")" * 31) == Flag("\\Seen")


def test_too_many_keys_are_bad():
    with pytest.raises(ParseError):
        keys(b" ".join([b"SEEN"] * (MAX_KEYS + 1)))
