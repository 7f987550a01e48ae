"""The IMAP lexical layer: strings, literals, numbers and lists, and what they refuse."""

from __future__ import annotations

import pytest

from mailstack.protocols.imap_tokens import ParseError, Reader


def read(raw: bytes, method: str, *args):
    reader = Reader(raw)
    value = getattr(reader, method)(*args)
    return value, raw[reader.pos:]


# --- quoted strings ------------------------------------------------------------------------------

def test_quoted_string_unescapes_quote_and_backslash():
    assert read(b'"a\\"b\\\\c" rest', "astring") == (b'a"b\\c', b" rest")


@pytest.mark.parametrize("raw", [b'"a\\nb"', b'"a\\', b'"abc', b'"a\rb"', b'"a\nb"', b'"a\x00b"'])
def test_quoted_string_with_other_escape_or_line_break_or_nul_is_bad(raw):
    with pytest.raises(ParseError):
        Reader(raw).astring()


def test_quoted_string_accepts_8bit_utf8_like_dovecot():
    assert read('"Grüße"'.encode(), "string") == ("Grüße".encode(), b"")


def test_unterminated_quote_of_64kb_fails_fast():
    with pytest.raises(ParseError):
        Reader(b'"' + b"a" * 65536).string()


# --- literals ------------------------------------------------------------------------------------

def test_literal_and_literal_plus_read_exactly_n_octets():
    assert read(b"{6}\r\nhel\r\no rest", "astring") == (b"hel\r\no", b" rest")
    assert read(b"{3+}\r\nabc", "string") == (b"abc", b"")
    assert read(b"{0}\r\n", "string") == (b"", b"")


@pytest.mark.parametrize("marker", [b"{+5}", b"{5_0}", b"{ 5}", b"{-1}", b"{5 }", b"{5++}",
                                    b"{0x5}", b"{12345678901}", b"{}", b"{5}"])
def test_literal_markers_twisted_accepted_are_bad(marker):
    # the last case: no CRLF after the marker
    raw = marker + (b"\r\nhello" if marker != b"{5}" else b"hello")
    with pytest.raises(ParseError):
        Reader(raw).astring()


def test_literal_longer_than_the_data_is_bad():
    with pytest.raises(ParseError, match="Literal longer"):
        Reader(b"{10}\r\nshort").astring()
    with pytest.raises(ParseError, match="Literal longer"):
        Reader(b"{9999999999}\r\nx").string()


# --- atoms, astrings, nstrings -------------------------------------------------------------------

def test_astring_atom_may_hold_close_bracket_but_atom_may_not():
    assert read(b"a]b c", "astring") == (b"a]b", b" c")
    assert read(b"a]b c", "atom") == (b"a", b"]b c")


@pytest.mark.parametrize("raw", [b"", b" x", b"(x", b"%x", b"*x", b"\\x", b"\x7fx", b"\xc3\xa4"])
def test_astring_refuses_atom_specials_controls_and_8bit_atoms(raw):
    with pytest.raises(ParseError):
        Reader(raw).astring()


def test_nstring_nil_in_any_case_is_none_but_nil_prefix_is_not():
    assert read(b"nil)", "nstring") == (None, b")")
    assert read(b"NIL", "nstring") == (None, b"")
    with pytest.raises(ParseError):
        Reader(b"NILS").nstring()


def test_list_mailbox_atom_holds_wildcards_and_bracket():
    assert read(b"a%b*c]d rest", "list_mailbox") == (b"a%b*c]d", b" rest")


# --- numbers -------------------------------------------------------------------------------------

def test_number_bounds():
    assert read(b"4294967295", "number")[0] == 4294967295
    assert read(b"0007", "number")[0] == 7
    for raw in (b"4294967296", b"99999999999", b"-1", b"+1", b"x"):
        with pytest.raises(ParseError):
            Reader(raw).number()
    with pytest.raises(ParseError):
        Reader(b"0").nz_number()


def test_a_60000_digit_number_is_refused_without_converting_it():
    with pytest.raises(ParseError, match="too large"):
        Reader(b"9" * 60000).number()
    assert read(b"0" * 60000 + b"5", "number")[0] == 5


def test_number64_for_mod_sequences():
    assert read(b"9223372036854775807", "number64")[0] == 2 ** 63 - 1
    with pytest.raises(ParseError):
        Reader(b"9223372036854775808").number64()


# --- spaces and lists ----------------------------------------------------------------------------

def test_end_tolerates_trailing_spaces_only():
    Reader(b"   ").end()
    with pytest.raises(ParseError):
        Reader(b"  x").end()


def test_more_consumes_one_space_before_an_argument():
    reader = Reader(b" a  ")
    assert reader.more() and reader.pos == 1
    reader.atom()
    assert not reader.more()
    reader.end()


def test_items_need_single_spaces_and_balanced_parentheses():
    reader = Reader(b"(a b c)")
    assert reader.items(reader.atom) == [b"a", b"b", b"c"]
    for raw in (b"(a  b)", b"(a )", b"( a)", b"(a b", b"()", b"a b)"):
        reader = Reader(raw)
        with pytest.raises(ParseError):
            reader.items(reader.atom)
    reader = Reader(b"()")
    assert reader.items(reader.atom, allow_empty=True) == []


def test_error_texts_never_echo_client_bytes():
    for raw in (b'"evil\\x', b"{5}\r\nab", b"\r\nevil"):
        with pytest.raises(ParseError) as caught:
            Reader(raw).astring()
        assert "evil" not in caught.value.text and "\r" not in caught.value.text
