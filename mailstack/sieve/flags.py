"""IMAP flags as imap4flags sets them: the internal variable and ``:flags``.

Why here: a flag list is a set of case-insensitive words, however the script spells it
("\\\\Seen \\\\Flagged" in one string or as a list, RFC 5232 §2), and only flags a mailbox
can store are kept (§5: the interpreter MUST ignore the others, and never fail on them).
Storable: the IMAP system flags but ``\\Recent`` (RFC 3501 §2.3.2), and keywords that are
IMAP atoms.  The system flags are spelled as IMAP spells them; a keyword keeps the case
it was first given in.

Standards: RFC 5232 §2, §3, §5; RFC 3501 §2.3.2, §9 (flag-keyword = atom).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

SYSTEM_FLAGS = {flag.lower(): flag for flag in
                ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft")}
MAX_FLAGS = 64               # flags kept on one message at most
MAX_KEYWORD = 100            # characters of a keyword at most
_KEYWORD = re.compile(r"[!#$&'+-\[^-z|}~]+")     # IMAP atom-char, ASCII: no ( ) { % * " \ ]


def words(strings: Iterable[str]) -> list[str]:
    """The flag names in a string list: each string may hold several (RFC 5232 §2)."""
    return [word for text in strings for word in text.split()]


def storable(flag: str) -> str | None:
    """The flag as stored, or None for one that cannot be (RFC 5232 §5)."""
    if flag.startswith("\\"):
        return SYSTEM_FLAGS.get(flag.lower())
    if len(flag) <= MAX_KEYWORD and _KEYWORD.fullmatch(flag):
        return flag
    return None


def added(current: tuple[str, ...], new: Iterable[str]) -> tuple[str, ...]:
    """``current`` with the storable flags of ``new`` (addflag, RFC 5232 §3.2)."""
    result = list(current)
    seen = {flag.lower() for flag in result}
    for word in words(new):
        flag = storable(word)
        if flag is not None and flag.lower() not in seen and len(result) < MAX_FLAGS:
            seen.add(flag.lower())
            result.append(flag)
    return tuple(result)


def removed(current: tuple[str, ...], gone: Iterable[str]) -> tuple[str, ...]:
    """``current`` without the flags of ``gone`` (removeflag, RFC 5232 §3.3)."""
    dropped = {word.lower() for word in words(gone)}
    return tuple(flag for flag in current if flag.lower() not in dropped)
