"""IMAP data as the server writes it: atoms, strings, NIL, numbers, parenthesised lists.

Why one module: every response the server writes goes through these few functions, so
the choice between atom, quoted string and literal is made once and made right.  A quoted
string can carry only 7-bit text without CR, LF or NUL (RFC 3501 §9 QUOTED-CHAR); anything
else -- and anything long, where a literal is cheaper than escaping -- is sent as a
literal, which a server may always send without waiting for the client.

Security: a value that came from a message (a subject, a file name) can never end the
response line early or smuggle a response in, because CR and LF force a literal.

Standards: RFC 3501 §4 (data formats), §9 (formal syntax).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NIL = b"NIL"
LONGEST_QUOTED = 1024
_UNQUOTABLE = re.compile(rb"[\x00\r\n\x80-\xff]")
_NOT_ASTRING_CHAR = re.compile(rb'[\x00-\x20\x7f-\xff(){%*"\\]')   # RFC 3501 ASTRING-CHAR


class Atom(bytes):
    """Bytes written as they are: an atom, a flag, NIL, or data already rendered."""


def literal(value: bytes) -> bytes:
    """``{n}CRLF`` followed by the octets (RFC 3501 §4.3)."""
    return b"{%d}\r\n" % len(value) + value


def quoted(value: bytes) -> bytes:
    """An IMAP string: quoted (escaping ``"`` and ``\\``) when it can be, else a literal."""
    if len(value) > LONGEST_QUOTED or _UNQUOTABLE.search(value):
        return literal(value)
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def astring(value: bytes) -> bytes:
    """An atom when every octet is an ASTRING-CHAR (and it is not NIL), else a string."""
    if value and value.upper() != NIL and not _NOT_ASTRING_CHAR.search(value):
        return value
    return quoted(value)


def nstring(value: bytes | None) -> bytes:
    """NIL for None, else a string."""
    return NIL if value is None else quoted(value)


def render(value) -> bytes:
    """One IMAP value: None is NIL, bytes and str are strings, ints are numbers, lists
    and tuples are parenthesised lists (space-separated), ``Atom`` is written as it is."""
    if value is None:
        return NIL
    if isinstance(value, Atom):
        return bytes(value)
    if isinstance(value, (bytes, bytearray)):
        return quoted(bytes(value))
    if isinstance(value, str):
        return quoted(value.encode("utf-8", "surrogateescape"))
    if isinstance(value, bool):
        raise TypeError("IMAP has no boolean")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, Sequence):
        return b"(" + b" ".join(render(item) for item in value) + b")"
    raise TypeError(f"cannot render {type(value).__name__} as IMAP data")


def uid_set(uids) -> bytes:
    """1,2,3,7,9,10 -> b"1:3,7,9:10" (RFC 4315 sequence sets)."""
    out, start, previous = [], None, None
    for uid in uids:
        if previous is not None and uid == previous + 1:
            previous = uid
            continue
        if start is not None:
            out.append((start, previous))
        start = previous = uid
    if start is not None:
        out.append((start, previous))
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in out)


def returned(found: list[int], returns) -> list[int]:
    """The messages a SEARCH reports (ascending ``found``): all of them, or with ESEARCH's
    MIN and/or MAX alone just those (RFC 7162 §3.1.5: MODSEQ is then theirs)."""
    if returns is None or {"ALL", "COUNT"} & set(returns) or not found:
        return found
    return sorted({found[0] if option == "MIN" else found[-1] for option in returns})


def esearch(tag: bytes, uid: bool, found: list[int], returns, modseq: int | None) -> bytes:
    """The ESEARCH response (RFC 4731 §3.1) for ``found`` (ascending) with the RETURN
    options asked; MIN, MAX and ALL are left out when nothing matched, COUNT never is;
    ``modseq``: the highest of the messages found when the search used MODSEQ (RFC 7162
    §3.1.5)."""
    out = [b'ESEARCH (TAG "' + tag + b'")'] + ([b"UID"] if uid else [])
    for option in returns:
        if option == "COUNT":
            out.append(b"COUNT %d" % len(found))
        elif found and option == "MIN":
            out.append(b"MIN %d" % found[0])
        elif found and option == "MAX":
            out.append(b"MAX %d" % found[-1])
        elif found and option == "ALL":
            out.append(b"ALL " + uid_set(found))
    if modseq is not None and found:
        out.append(b"MODSEQ %d" % modseq)
    return b" ".join(out)
