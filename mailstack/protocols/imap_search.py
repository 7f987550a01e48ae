"""IMAP SEARCH keys (RFC 3501 §6.4.4) parsed into the store's criteria tree.

Why: the search itself runs in SQL (store/message_search.py), so this module only turns
the nested token list Twisted's ``arg_searchkeys`` produces into the criteria tree and
refuses what is malformed (ValueError: the protocol answers BAD) or in a charset we do not
search in (BadCharset: ``NO [BADCHARSET]``).  The tree's classes live in the store
because the store may not import protocol code (tests/unit/test_layering.py).

\\Recent is never set by this server, so RECENT and NEW match nothing and OLD everything.

Standards: RFC 3501 §6.4.4, §9 (search-key grammar); RFC 3501 §4.3 (literals).
"""

from __future__ import annotations

import re
from datetime import date

from twisted.mail.imap4 import parseNestedParens

from mailstack.store.search_criteria import (
    All, And, Date, Flag, Header, Keyword, Not, Nothing, Or, Seqs, Size, Text, Uids,
)

CHARSETS = ("US-ASCII", "UTF-8")
MAX_DEPTH = 32          # NOT/OR/parentheses nesting: bounds recursion here and in SQL
MAX_KEYS = 500          # search keys in one command
MAX_NEEDLE = 4096       # characters in one search string
LARGEST = 4294967295    # number / nz-number (RFC 3501 §9)
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4})\Z", re.ASCII)
_SET_PART = re.compile(r"(\d+|\*)(?::(\d+|\*))?\Z", re.ASCII)
_NUMBER = re.compile(r"\d+\Z", re.ASCII)
_LITERAL_AT_END = re.compile(rb"\{(\d+)\}\Z")


class BadCharset(ValueError):
    """A SEARCH CHARSET other than US-ASCII or UTF-8 (RFC 3501 §6.4.4: NO [BADCHARSET]).

    A ValueError like every other refusal here; the protocol catches it first.
    """


_SYSTEM_FLAGS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft",
                 "FLAGGED": "\\Flagged", "SEEN": "\\Seen"}
_FLAG_KEYS = {**{key: Flag(flag, True) for key, flag in _SYSTEM_FLAGS.items()},
              **{"UN" + key: Flag(flag, False) for key, flag in _SYSTEM_FLAGS.items()}}
_CONSTANTS = {"ALL": All(), "OLD": All(), "NEW": Nothing(), "RECENT": Nothing()}
_DATES = {"BEFORE": ("internal", "before"), "ON": ("internal", "on"),
          "SINCE": ("internal", "since"), "SENTBEFORE": ("sent", "before"),
          "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since")}
_HEADERS = ("FROM", "TO", "CC", "BCC", "SUBJECT")


def parse(query, charset=None):
    """The criteria tree of a SEARCH command's keys (all of them must hold)."""
    check_charset(charset)
    return _Parser().group(query, 0)


def check_charset(charset) -> None:
    if charset is None:
        return
    name = charset.decode("ascii", "replace") if isinstance(charset, bytes) else str(charset)
    if name.strip('"').upper() not in CHARSETS:
        raise BadCharset(name)


def all_of(parts):
    """AND of ``parts``, simplified: ALL drops out, NOTHING wins, one part stands alone."""
    flat = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, And) else [part])
    if any(isinstance(p, Nothing) for p in flat):
        return Nothing()
    flat = [p for p in flat if not isinstance(p, All)]
    return All() if not flat else flat[0] if len(flat) == 1 else And(tuple(flat))


def negated(part):
    if isinstance(part, Not):
        return part.part
    simple = {All: Nothing(), Nothing: All()}
    return simple.get(type(part), Not(part))


def either(left, right):
    if isinstance(left, All) or isinstance(right, All):
        return All()
    if isinstance(left, Nothing):
        return right
    return left if isinstance(right, Nothing) else Or(left, right)


def sequence_set(text: str) -> tuple:
    """``1,3:5,7:*`` as ((1, 1), (3, 5), (7, None)); ``*`` is None (RFC 3501 §9)."""
    ranges = []
    for part in text.split(","):
        found = _SET_PART.match(part)
        if not found:
            raise ValueError(f"bad sequence set {text!r}")
        low = _set_number(found.group(1))
        ranges.append((low, _set_number(found.group(2)) if found.group(2) else low))
    return tuple(ranges)


def _set_number(text: str):
    if text == "*":
        return None
    value = int(text)
    if not 1 <= value <= LARGEST:
        raise ValueError(f"sequence number out of range: {text}")
    return value


class _Parser:
    """Walks the token list; each ``key`` consumes one search key and its arguments."""

    def __init__(self):
        self.keys = 0

    def group(self, tokens, depth: int):
        if not isinstance(tokens, list) or not tokens:
            raise ValueError("empty search key list")
        stream = iter(tokens)
        parts = []
        for token in stream:
            parts.append(self.key(token, stream, depth))
        return all_of(parts)

    def key(self, token, stream, depth: int):
        self.keys += 1
        if depth > MAX_DEPTH or self.keys > MAX_KEYS:
            raise ValueError("search keys nested too deep or too many")
        if isinstance(token, list):
            return self.group(token, depth + 1)
        word = _string(token)
        if word[:1].isdigit() or word[:1] == "*":
            return Seqs(sequence_set(word))
        return self.named(word.upper(), stream, depth)

    def named(self, name: str, stream, depth: int):
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name in _FLAG_KEYS:
            return _FLAG_KEYS[name]
        if name in ("NOT", "OR"):
            first = self.key(_next(stream), stream, depth + 1)
            if name == "NOT":
                return negated(first)
            return either(first, self.key(_next(stream), stream, depth + 1))
        return self.with_arguments(name, stream)

    def with_arguments(self, name: str, stream):
        if name in ("KEYWORD", "UNKEYWORD"):
            return Keyword(_flag_name(_argument(stream)), name == "KEYWORD")
        if name == "UID":
            return Uids(sequence_set(_argument(stream)))
        if name in ("LARGER", "SMALLER"):
            return Size(name.lower(), _number(_argument(stream)))
        if name in _DATES:
            return Date(*_DATES[name], _day(_argument(stream)))
        if name in _HEADERS:
            return Header(name.lower(), _needle(stream))
        if name == "HEADER":
            field = _field_name(_argument(stream))
            return Header(field, _needle(stream))
        if name in ("BODY", "TEXT"):
            return Text(name.lower(), _needle(stream))
        raise ValueError(f"unknown search key {name!r}")


def _next(stream):
    token = next(stream, _END)
    if token is _END:
        raise ValueError("search key without its argument")
    return token


_END = object()


def _argument(stream) -> str:
    return _string(_next(stream))


def _needle(stream) -> str:
    text = _argument(stream)
    if len(text) > MAX_NEEDLE:
        raise ValueError("search string too long")
    return text


def _string(token) -> str:
    if token is None:                       # Twisted reads an unquoted NIL as None
        return "NIL"
    if not isinstance(token, bytes):
        raise ValueError("a list where a string was expected")
    return token.decode("utf-8")            # UnicodeDecodeError is a ValueError


def _flag_name(text: str) -> str:
    if not text or any(c in text for c in ' ()"{\r\n'):
        raise ValueError(f"bad keyword {text!r}")
    return text


def _field_name(text: str) -> str:
    if not text.strip() or ":" in text:
        raise ValueError(f"bad header field name {text!r}")
    return text.strip()


def _number(text: str) -> int:
    if not _NUMBER.match(text) or int(text) > LARGEST:
        raise ValueError(f"bad number {text!r}")
    return int(text)


def _day(text: str):
    """``1-Feb-1994`` (RFC 3501 §9 date); a day that does not exist is malformed."""
    found = _DATE.match(text)
    if not found or found.group(2).upper() not in MONTHS:
        raise ValueError(f"bad date {text!r}")
    day, month, year = found.groups()
    return date(int(year), MONTHS.index(month.upper()) + 1, int(day))


# --- literals --------------------------------------------------------------------------------

def arg_searchkeys(server, line: bytes):
    """A drop-in for ``IMAP4Server.arg_searchkeys`` that accepts literals (RFC 3501 §4.3).

    Twisted's version parses the line as it stands: ``SUBJECT {4}`` never gets its ``+``
    continuation and searches for an empty string.  This one asks for each literal that
    ends a line, then parses the whole command, literals in place.  To use it:
    ``select_SEARCH = (do_SEARCH, P.opt_charset, imap_search.arg_searchkeys)``.
    """
    return _collect(server, line, b"")


def _collect(server, line: bytes, before: bytes):
    found = _LITERAL_AT_END.search(line)
    if found is None:
        return parseNestedParens(before + line), b""
    waiting = server._stringLiteral(int(found.group(1)))
    return waiting.addCallback(
        lambda got: _collect(server, got[1], before + line + b"\r\n" + got[0]))
