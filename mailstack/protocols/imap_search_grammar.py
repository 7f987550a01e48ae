"""SEARCH keys read straight from the command into the store's criteria tree.

Why: the search runs in SQL (store/message_search.py), so this module only reads the keys
from an ``imap_tokens.Reader``, literals included, into the tree, with bounds
(``MAX_DEPTH`` nesting, ``MAX_KEYS`` keys, ``MAX_NEEDLE`` characters) and the simplifying
constructors ``all_of``/``negated``/``either`` (ALL drops out of an AND, and so on).

\\Recent is per session, so the store cannot evaluate it: RECENT, NEW (= RECENT UNSEEN)
and OLD (= NOT RECENT) become ``Recent`` nodes, and ``resolve_recent`` replaces them by
UID ranges of the session's \\Recent set before the tree goes to the store.

Search strings are decoded as UTF-8 with replacement whatever the CHARSET: US-ASCII is
a subset, and a stray byte must not make a search fail.  A CHARSET other than US-ASCII or
UTF-8 raises ``BadCharset`` (the server answers ``NO [BADCHARSET (US-ASCII UTF-8)]``).

Standards: RFC 3501 §6.4.4 and §9 (search-key), RFC 9051 §6.4.4, RFC 7162 §3.1.5 (MODSEQ),
RFC 4731 §3 (SEARCH RETURN).
Security: nesting is bounded by ``MAX_DEPTH`` (recursion here, and in the SQL the store
builds), so 3,900 nested parentheses are a ParseError, never a RecursionError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from mailstack.protocols.imap_sequence import SET_CHARS, SequenceSet
from mailstack.protocols.imap_tokens import ParseError, Reader
from mailstack.store.search_criteria import (
    All, And, Date, Flag, Header, Keyword, Modseq, Not, Nothing, Or, Seqs, Size, Text, Uids,
)

CHARSETS = ("US-ASCII", "UTF-8")
MAX_DEPTH = 32          # NOT/OR/parentheses nesting
MAX_KEYS = 500          # search keys in one command
MAX_NEEDLE = 4096       # characters in one search string
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\Z")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")          # RFC 5322 ftext


class BadCharset(ParseError):
    """A CHARSET we do not search in: answer ``NO [BADCHARSET]``, not BAD.

    A ParseError (so it carries the tag); catch it before ParseError.
    """


@dataclass(frozen=True)
class Recent:
    """\\Recent set (present) or not: replaced by ``resolve_recent`` before the store."""

    present: bool


_SYSTEM_FLAGS = {"ANSWERED": "\\Answered", "DELETED": "\\Deleted", "DRAFT": "\\Draft",
                 "FLAGGED": "\\Flagged", "SEEN": "\\Seen"}
_CONSTANTS = {**{key: Flag(flag, True) for key, flag in _SYSTEM_FLAGS.items()},
              **{"UN" + key: Flag(flag, False) for key, flag in _SYSTEM_FLAGS.items()},
              "ALL": All(), "RECENT": Recent(True), "OLD": Recent(False),
              "NEW": And((Recent(True), Flag("\\Seen", False)))}
_DATES = {"BEFORE": ("internal", "before"), "ON": ("internal", "on"),
          "SINCE": ("internal", "since"), "SENTBEFORE": ("sent", "before"),
          "SENTON": ("sent", "on"), "SENTSINCE": ("sent", "since")}
_HEADERS = ("FROM", "TO", "CC", "BCC", "SUBJECT")


# --- the simplifying constructors (the same rules as imap_search) ------------------------------

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
    if isinstance(part, Recent):
        return Recent(not part.present)
    simple = {All: Nothing(), Nothing: All()}
    return simple.get(type(part), Not(part))


def either(left, right):
    if isinstance(left, All) or isinstance(right, All):
        return All()
    if isinstance(left, Nothing):
        return right
    return left if isinstance(right, Nothing) else Or(left, right)


# --- reading -----------------------------------------------------------------------------------

RETURN_OPTIONS = ("MIN", "MAX", "ALL", "COUNT")


def search_returns(reader: Reader) -> tuple[str, ...] | None:
    """``RETURN (opts)`` in front of the search program (RFC 4731 §3), or None for a
    plain SEARCH; ``RETURN ()`` means ALL.  The reader stands just after ``SEARCH SP``."""
    if reader.peek(7).upper() != b"RETURN ":
        return None
    reader.pos += 7
    reader.expect(b"(", "RETURN options must be in parentheses")
    options = []
    while not reader.skip(b")"):
        if options:
            reader.sp()
        option = reader.atom().decode("ascii", "replace").upper()
        if option not in RETURN_OPTIONS:
            raise ParseError(f"unknown SEARCH RETURN option {option[:20]}")
        options.append(option)
    reader.sp()
    return tuple(dict.fromkeys(options)) or ("ALL",)


def parse_search(reader: Reader) -> tuple[str | None, object]:
    """``[CHARSET astring SP] search-key *(SP search-key)`` up to the end of the command.

    The reader stands just after ``SEARCH SP``.  Returns (charset upper-cased or None,
    criteria tree); BadCharset as soon as an unsupported charset is read.
    """
    charset = None
    if reader.peek(8).upper() == b"CHARSET ":
        reader.pos += 8
        charset = reader.astring().decode("ascii", "replace").upper()
        if charset not in CHARSETS:
            raise BadCharset("Unsupported charset")
        reader.sp()
    keys = _Keys(reader)
    tree = keys.sequence(0, closing=False)
    reader.end()
    return charset, tree


class _Keys:
    """One SEARCH command's keys; ``key`` reads one key and its arguments."""

    def __init__(self, reader: Reader):
        self.reader, self.count = reader, 0

    def sequence(self, depth: int, closing: bool):
        """Keys separated by single spaces, up to ``)`` (closing) or the end."""
        keys = [self.key(depth)]
        while self.reader.more() if not closing else self.reader.skip(b" "):
            keys.append(self.key(depth))
        return all_of(keys)

    def key(self, depth: int):
        self.count += 1
        if depth > MAX_DEPTH or self.count > MAX_KEYS:
            raise ParseError("Search keys nested too deep or too many")
        reader = self.reader
        if reader.skip(b"("):
            inner = self.sequence(depth + 1, closing=True)
            reader.expect(b")", "Expected ) after search keys")
            return inner
        first = reader.peek()
        if first and first in b"0123456789*":
            return Seqs(_sequence_set(reader))
        return self.named(reader.word(), depth)

    def named(self, name: str, depth: int):
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if name == "NOT":
            self.reader.sp()
            return negated(self.key(depth + 1))
        if name == "OR":
            self.reader.sp()
            left = self.key(depth + 1)
            self.reader.sp()
            return either(left, self.key(depth + 1))
        self.reader.sp()
        return _with_argument(name, self.reader)


def _with_argument(name: str, reader: Reader):
    if name in ("KEYWORD", "UNKEYWORD"):
        return Keyword(reader.atom().decode("ascii"), name == "KEYWORD")
    if name == "UID":
        return Uids(_sequence_set(reader))
    if name in ("LARGER", "SMALLER"):
        return Size(name.lower(), reader.number())
    if name in _DATES:
        return Date(*_DATES[name], search_date(reader.astring()))
    if name in _HEADERS:
        return Header(name.lower(), _needle(reader))
    if name == "HEADER":
        field = _field_name(reader.astring())
        reader.sp()
        return Header(field, _needle(reader))
    if name in ("BODY", "TEXT"):
        return Text(name.lower(), _needle(reader))
    if name == "MODSEQ":
        return _modseq(reader)
    raise ParseError("Unknown search key")


_ENTRY_TYPES = ("PRIV", "SHARED", "ALL")


def _modseq(reader: Reader) -> Modseq:
    """RFC 7162 §3.1.5: ``MODSEQ [SP entry-name SP entry-type-req] SP mod-sequence-valzer``.
    The entry (one flag's metadata) narrows nothing here: a message has one modseq."""
    if reader.peek() == b'"':
        reader.string()
        reader.sp()
        if reader.word() not in _ENTRY_TYPES:
            raise ParseError("Bad MODSEQ entry type")
        reader.sp()
    return Modseq(reader.number64())


def _sequence_set(reader: Reader) -> tuple:
    return SequenceSet.parse(reader.match(SET_CHARS, "Expected a sequence set").group()).ranges


def _needle(reader: Reader) -> str:
    text = reader.astring().decode("utf-8", "replace")
    if len(text) > MAX_NEEDLE:
        raise ParseError("Search string too long")
    return text


def _field_name(raw: bytes) -> str:
    if not _FIELD_NAME.match(raw):
        raise ParseError("Bad header field name")
    return raw.decode("ascii")


def search_date(raw: bytes) -> date:
    """``1-Feb-1994`` (RFC 3501 §9 date, quoted or not); a day that does not exist is bad."""
    found = _DATE.match(raw)
    if not found or found.group(2).upper().decode() not in MONTHS:
        raise ParseError("Bad date")
    day, month, year = found.groups()
    try:
        return date(int(year), MONTHS.index(month.upper().decode()) + 1, int(day))
    except ValueError:
        raise ParseError("Bad date") from None


# --- \Recent, once the session is known --------------------------------------------------------

def resolve_recent(tree, recent_uids: frozenset[int]):
    """``tree`` with every ``Recent`` node replaced by UID ranges of ``recent_uids``."""
    if isinstance(tree, Recent):
        return _recent(tree.present, recent_uids)
    if isinstance(tree, And):
        return all_of([resolve_recent(part, recent_uids) for part in tree.parts])
    if isinstance(tree, Or):
        return either(resolve_recent(tree.left, recent_uids),
                      resolve_recent(tree.right, recent_uids))
    if isinstance(tree, Not):
        return negated(resolve_recent(tree.part, recent_uids))
    return tree


def _recent(present: bool, recent_uids: frozenset[int]):
    if not recent_uids:
        return Nothing() if present else All()
    ranges: list[list[int]] = []
    for uid in sorted(recent_uids):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    node = Uids(tuple((low, high) for low, high in ranges))
    return node if present else Not(node)

