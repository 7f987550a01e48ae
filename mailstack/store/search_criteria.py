"""The store's search vocabulary: what IMAP SEARCH (or any other caller) can ask for.

Why a module of its own: ``protocols/imap_search_grammar.py`` reads IMAP syntax into these nodes and
``store/message_search.py`` compiles them to SQL; the store may not import protocol code.
Frozen, so equal keys share one SQL column in a re-check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class All:
    pass


@dataclass(frozen=True)
class Nothing:
    pass


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    left: object
    right: object


@dataclass(frozen=True)
class Not:
    part: object


@dataclass(frozen=True)
class Flag:
    name: str                   # a system flag, "\\Seen"; matched case-insensitively
    present: bool = True


@dataclass(frozen=True)
class Keyword(Flag):
    """A client's keyword, "$Label1": stored and matched like a system flag."""


@dataclass(frozen=True)
class Uids:
    ranges: tuple               # ((low, high), ...); None stands for "*"


@dataclass(frozen=True)
class Seqs(Uids):
    """Sequence numbers: resolved through the session's snapshot of UIDs."""


@dataclass(frozen=True)
class Size:
    op: str                     # "larger" | "smaller"
    n: int


@dataclass(frozen=True)
class Modseq:
    """RFC 7162 §3.1.5 SEARCH MODSEQ: changed at or after mod-sequence ``n``."""

    n: int


@dataclass(frozen=True)
class Date:
    field: str                  # "internal" | "sent"
    op: str                     # "before" | "on" | "since"
    day: date                   # a UTC calendar day


@dataclass(frozen=True)
class Header:
    name: str                   # as the client wrote them; matched case-insensitively
    needle: str


@dataclass(frozen=True)
class Text:
    where: str                  # "body" (after the header block) | "text" (all of it)
    needle: str


def _children(node) -> tuple:
    if isinstance(node, And):
        return node.parts
    if isinstance(node, Or):
        return node.left, node.right
    return (node.part,) if isinstance(node, Not) else ()
