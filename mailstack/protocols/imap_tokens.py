"""The lexical layer of IMAP commands: atoms, strings, literals, numbers, lists.

Why ours: Twisted's IMAP parser reads ``{+5}``, ``{5_0}`` and ``{ 5}`` through ``int()``
and lets ``{-1}`` swallow the next line (TWISTED-NOTES).  Here a ``Reader`` walks one
complete command (the framing layer has already gathered it, literals inline as sent)
with a position, and each method consumes exactly one grammar element or raises
``ParseError``.  Every element is matched by a compiled regular expression anchored at the
position, so a 64 KB command costs a handful of C-level scans, never a Python loop per
byte; nothing here recurses.

Leniency (each decided, nothing accidental):
  * 8-bit bytes are accepted inside quoted strings (RFC 9051 allows UTF-8 there; Dovecot
    accepts them too); NUL, CR and LF never are.  Atoms stay 7-bit, as RFC 3501 says.
  * Spaces after the last argument are ignored (``end``/``more``); between arguments
    exactly one SP is required.
  * Numbers may carry leading zeros (``number = 1*DIGIT``).  A literal's length is 1 to
    10 digits and nothing else: no sign, space or underscore, no ``+`` but LITERAL+'s.

Standards: RFC 3501 §4 and §9 (atom, astring, string, literal, number), RFC 7888
(LITERAL+ ``{N+}``), RFC 9051 §9 (8-bit in quoted strings).
Security: a literal's length is checked against what is really there before it is
used; a number has at most 10 significant digits before ``int()`` sees it; ``items``
reads one level of a list and the grammar modules nest it to a fixed depth (2; SEARCH
bounds its own at ``imap_search_grammar.MAX_DEPTH``), so nothing recurses with the
input; error texts never echo client bytes, so they are safe to send back.
"""

from __future__ import annotations

import re

MAX_NUMBER = 4294967295         # number / nz-number (RFC 3501 §9)
MAX_NUMBER64 = 2 ** 63 - 1      # mod-sequence-value, quota limits (RFC 7162, RFC 9208)

_CTL_8BIT = rb"\x00-\x1f\x7f-\xff"
ATOM = re.compile(rb'[^(){ %*"\\\]' + _CTL_8BIT + rb"]+")
ASTRING_ATOM = re.compile(rb'[^(){ %*"\\' + _CTL_8BIT + rb"]+")        # ATOM-CHAR + "]"
LIST_ATOM = re.compile(rb'[^(){ "\\' + _CTL_8BIT + rb"]+")             # + "%" "*" "]"
TAG = re.compile(rb'[^(){ %*"\\+' + _CTL_8BIT + rb"]+")                # ASTRING-CHAR - "+"
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]++|\\["\\])*+)"')
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_LITERAL = re.compile(rb"\{([0-9]{1,10})(\+?)\}\r\n")
_DIGITS = re.compile(rb"[0-9]+")
_NIL = re.compile(rb"(?i:NIL)(?=[ )]|\Z)")
_SPACES_TO_END = re.compile(rb" *+\Z")


class ParseError(ValueError):
    """A malformed command; the server answers ``tag BAD text`` (``* BAD`` without a tag).

    ``text`` is short and never contains client input, so it can be sent as it is.
    ``tag`` is filled in by ``imap_parser.parse_command`` once the tag has been read.
    """

    def __init__(self, text: str, tag: bytes | None = None):
        super().__init__(text)
        self.text, self.tag = text, tag


class Reader:
    """A position in one command; each method reads one element and moves past it."""

    def __init__(self, raw: bytes, pos: int = 0, spooled: dict | None = None):
        """``spooled``: literals whose octets the framing put in a sink, by position."""
        self.raw, self.pos = raw, pos
        self.spooled = spooled or {}

    # --- looking -------------------------------------------------------------------------

    def peek(self, count: int = 1) -> bytes:
        return self.raw[self.pos:self.pos + count]

    def more(self) -> bool:
        """Consume the SP before another argument; False if none follows (the end, or
        only trailing spaces, or something else that the caller then checks)."""
        if self.peek() != b" " or _SPACES_TO_END.match(self.raw, self.pos):
            return False
        self.pos += 1
        return True

    def end(self) -> None:
        """Nothing but (tolerated) trailing spaces may remain."""
        if not _SPACES_TO_END.match(self.raw, self.pos):
            raise ParseError("Unexpected extra arguments")
        self.pos = len(self.raw)

    # --- punctuation ---------------------------------------------------------------------

    def sp(self) -> None:
        self.expect(b" ", "Expected a space")

    def expect(self, byte: bytes, text: str) -> None:
        if self.raw[self.pos:self.pos + len(byte)] != byte:
            raise ParseError(text)
        self.pos += len(byte)

    def match(self, pattern: re.Pattern, text: str) -> re.Match:
        found = pattern.match(self.raw, self.pos)
        if found is None:
            raise ParseError(text)
        self.pos = found.end()
        return found

    def skip(self, byte: bytes) -> bool:
        """Consume ``byte`` if it is next; say whether it was."""
        if self.raw[self.pos:self.pos + len(byte)] == byte:
            self.pos += len(byte)
            return True
        return False

    # --- words and strings ---------------------------------------------------------------

    def atom(self) -> bytes:
        return self.match(ATOM, "Expected an atom").group()

    def word(self) -> str:
        """An atom upper-cased, for keywords (command names, items, options)."""
        return self.atom().decode("ascii").upper()

    def astring(self) -> bytes:
        first = self.peek()
        if first == b'"' or first == b"{":
            return self.string()
        return self.match(ASTRING_ATOM, "Expected a string or atom").group()

    def list_mailbox(self) -> bytes:
        """``list-mailbox = 1*list-char / string``: an atom may hold % * ] (RFC 3501 §9)."""
        first = self.peek()
        if first == b'"' or first == b"{":
            return self.string()
        return self.match(LIST_ATOM, "Expected a mailbox pattern").group()

    def string(self) -> bytes:
        first = self.peek()
        if first == b'"':
            return self.quoted()
        if first == b"{":
            return self.literal()
        raise ParseError("Expected a quoted string or literal")

    def nstring(self) -> bytes | None:
        if self.match_nil():
            return None
        return self.string()

    def match_nil(self) -> bool:
        found = _NIL.match(self.raw, self.pos)
        if found:
            self.pos = found.end()
        return found is not None

    def quoted(self) -> bytes:
        body = self.match(_QUOTED, "Bad quoted string").group(1)
        return _ESCAPE.sub(rb"\1", body) if b"\\" in body else body

    def literal(self) -> bytes:
        """``{N}`` or ``{N+}`` CRLF and N octets, all of which must be present."""
        found = self.match(_LITERAL, "Bad literal")
        if self.pos in self.spooled:          # only an APPEND's message may be that long
            raise ParseError("Literal too long")
        return self._octets(int(found.group(1)))

    def message_literal(self):
        """A literal that may have been spooled (an APPEND's message): its ``bytes``, or
        the sink holding its octets (``message/spool.Spool``)."""
        found = self.match(_LITERAL, "Bad literal")
        sink = self.spooled.get(self.pos)
        if sink is None:
            return self._octets(int(found.group(1)))
        if sink.size != int(found.group(1)):
            raise ParseError("Literal longer than the data sent")
        return sink

    def _octets(self, size: int) -> bytes:
        if size > len(self.raw) - self.pos:
            raise ParseError("Literal longer than the data sent")
        data = self.raw[self.pos:self.pos + size]
        self.pos += size
        return data

    # --- numbers -------------------------------------------------------------------------

    def number(self, largest: int = MAX_NUMBER) -> int:
        digits = self.match(_DIGITS, "Expected a number").group().lstrip(b"0") or b"0"
        if len(digits) > len(str(largest)) or int(digits) > largest:
            raise ParseError("Number too large")
        return int(digits)

    def nz_number(self) -> int:
        value = self.number()
        if value == 0:
            raise ParseError("Zero is not allowed here")
        return value

    def number64(self) -> int:
        return self.number(MAX_NUMBER64)

    # --- lists ---------------------------------------------------------------------------

    def items(self, read_one, allow_empty: bool = False) -> list:
        """``"(" item *(SP item) ")"``, each item read by ``read_one()``."""
        self.expect(b"(", "Expected (")
        found = []
        if self.skip(b")"):
            if not allow_empty:
                raise ParseError("Empty list")
            return found
        found.append(read_one())
        while self.skip(b" "):
            found.append(read_one())
        self.expect(b")", "Expected )")
        return found
