"""String comparison: the match types (``:is``, ``:contains``, ``:matches``) under the two
comparators every Sieve implementation has (``i;octet``, ``i;ascii-casemap``).

Why compiled matchers: a script is compiled once and run for every message, so the keys
are folded (case-mapped), put in a set (``:is``) and cut into glob pieces (``:matches``)
once; matching a value is then a fold and a set lookup, a substring search, or a few
``str.find`` calls.

Why no regular expressions for ``:matches``: a glob turned into a backtracking regular
expression (``*a*a*a*a*b`` as ``.*a.*a.*a.*a.*b``) costs time exponential in the stars on
a hostile value; a customer's script must not be able to stall delivery.  The pattern is
cut at its stars into pieces of literals and ``?``; the first piece is anchored at the
start, the last at the end, and each middle piece is found at its leftmost place after the
previous one (a greedy leftmost placement is correct: a star absorbs whatever the next
piece skips).  The cost is bounded by the value's length times the pattern's.

Characters: values are Unicode text (header fields decoded, RFC 5228 §2.7.2), and ``?``
matches one character, not one octet as §2.7.1 reads for these two comparators; this is
what a user means by "?" in a subject with an accent, and what Dovecot's Pigeonhole does.

Standards: RFC 5228 §2.7.1 (match types, escapes ``\\*`` and ``\\?``), §2.7.3
(comparators, default ``i;ascii-casemap``); RFC 4790 §9.2 (i;ascii-casemap), §9.3 (i;octet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

ASCII_CASEMAP = "i;ascii-casemap"
OCTET = "i;octet"
COMPARATORS = (ASCII_CASEMAP, OCTET)
MATCH_TYPES = (":is", ":contains", ":matches")
_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}
_ANY = object()            # a "?" in a glob piece

Matcher = Callable[[str], bool]


def ascii_fold(text: str) -> str:
    """i;ascii-casemap (RFC 4790 §9.2): A-Z as a-z, every other character unchanged."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _same(text: str) -> str:
    return text


def fold_for(comparator: str) -> Callable[[str], str]:
    if comparator not in COMPARATORS:
        raise ValueError(f"unknown comparator {comparator!r}")
    return ascii_fold if comparator == ASCII_CASEMAP else _same


def matcher(match_type: str, comparator: str, keys: Iterable[str]) -> Matcher:
    """A function telling whether a value matches any of ``keys`` (RFC 5228 §2.7)."""
    fold = fold_for(comparator)
    folded = tuple(fold(key) for key in keys)
    if match_type == ":is":
        wanted = frozenset(folded)
        return lambda value: fold(value) in wanted
    if match_type == ":contains":
        if "" in folded:                     # the empty key is contained in every value
            return lambda value: True
        return lambda value: _contains_any(folded, fold(value))
    if match_type == ":matches":
        globs = tuple(Glob(key) for key in folded)
        return lambda value: _matches_any(globs, fold(value))
    raise ValueError(f"unknown match type {match_type!r}")


def _contains_any(keys: tuple[str, ...], value: str) -> bool:
    for key in keys:
        if key in value:
            return True
    return False


def _matches_any(globs: tuple[Glob, ...], value: str) -> bool:
    for glob in globs:
        if glob.matches(value):
            return True
    return False


def _pieces(pattern: str) -> list[list]:
    """The pattern cut at its unescaped stars; each piece a list of literal runs (str)
    and ``_ANY`` (an unescaped "?").  A backslash makes the next character literal."""
    pieces: list[list] = [[]]
    literal: list[str] = []
    escaped = False
    for char in pattern:
        if escaped or char not in "\\*?":
            literal.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            if literal:
                pieces[-1].append("".join(literal))
                literal = []
            if char == "*":
                pieces.append([])
            else:
                pieces[-1].append(_ANY)
    if literal:
        pieces[-1].append("".join(literal))
    return pieces


class Glob:
    """A ``:matches`` pattern, matched without backtracking (module docstring)."""

    __slots__ = ("head", "middle", "tail", "starred", "fixed")

    def __init__(self, pattern: str):
        pieces = _pieces(pattern)
        self.starred = len(pieces) > 1
        self.head = pieces[0]
        self.middle = pieces[1:-1]
        self.tail = pieces[-1] if self.starred else []
        self.fixed = sum(_length(piece) for piece in pieces)

    def matches(self, value: str) -> bool:
        if len(value) < self.fixed:
            return False
        if not self.starred:
            return len(value) == _length(self.head) and _at(self.head, value, 0)
        if not _at(self.head, value, 0):
            return False
        position, end = _length(self.head), len(value) - _length(self.tail)
        if not _at(self.tail, value, end):
            return False
        for piece in self.middle:
            found = _find(piece, value, position, end)
            if found < 0:
                return False
            position = found + _length(piece)
        return position <= end


def _length(piece: list) -> int:
    return sum(1 if part is _ANY else len(part) for part in piece)


def _at(piece: list, value: str, start: int) -> bool:
    """Whether ``piece`` matches ``value`` exactly at ``start``."""
    position = start
    for part in piece:
        if part is _ANY:
            position += 1
            continue
        if not value.startswith(part, position):
            return False
        position += len(part)
    return position <= len(value)


def _find(piece: list, value: str, start: int, end: int) -> int:
    """The leftmost index >= ``start`` where ``piece`` matches within value[:end], or -1."""
    length = _length(piece)
    literals = [index for index, part in enumerate(piece) if part is not _ANY]
    if not literals:                             # only "?": any place with room
        return start if start + length <= end else -1
    offset = _length(piece[:literals[0]])        # where the first literal sits in the piece
    first = piece[literals[0]]
    candidate = value.find(first, start + offset, end)
    while candidate >= 0:
        begin = candidate - offset
        if begin + length <= end and _at(piece, value, begin):
            return begin
        candidate = value.find(first, candidate + 1, end)
    return -1
