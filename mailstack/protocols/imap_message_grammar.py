"""Arguments of the IMAP commands on messages: APPEND, FETCH, STORE, COPY, MOVE, SEARCH
and UID EXPUNGE (each also under UID where the RFCs allow it).

Why: each reads its arguments from an ``imap_tokens.Reader`` standing after the command
name and its space and returns an ``imap_commands`` object, or raises ParseError.

Flags (STORE and APPEND) are the five system flags, in any case and returned in their RFC
spelling (``\\SEEN`` becomes ``\\Seen``), or keyword atoms kept as sent.  ``\\Recent``
and any other ``\\Word`` are BAD: RFC 3501 §2.3.2 lets no client set \\Recent, and a
flag-extension we do not know would only be stored as a keyword by mistake.

APPEND takes one message, which must be a literal (RFC 3501 §6.3.11); MULTIAPPEND,
CATENATE and literal8 are not advertised and so are BAD.  Its date-time is the exact
RFC 3501 form, but the day may be one digit as well as space-padded or two digits.

Standards: RFC 3501 §6.3.11, §6.4, §9; RFC 4315 (UID EXPUNGE), RFC 6851 (MOVE), RFC 7162
(CHANGEDSINCE, UNCHANGEDSINCE), RFC 7888 (LITERAL+ in APPEND).
Security: the APPEND message is the literal the framing layer already sized and capped;
nothing here copies it more than once, and one too large for a command stays in its spool.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from mailstack.protocols.imap_commands import (
    Append, CopyMessages, Expunge, Fetch, Search, Store,
)
from mailstack.protocols.imap_fetch_items import parse_fetch_items
from mailstack.protocols.imap_folder_grammar import mailbox
from mailstack.protocols.imap_search_grammar import MONTHS, parse_search, search_returns
from mailstack.protocols.imap_sequence import SET_CHARS, SequenceSet
from mailstack.protocols.imap_tokens import ParseError, Reader

SYSTEM_FLAGS = {f.upper(): f for f in
                ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")}
_STORE_ACTION = re.compile(rb"([+-]?)(?i:FLAGS)((?i:\.SILENT)?)(?=[ ]|\Z)")
_MODES = {b"": "=", b"+": "+", b"-": "-"}
_DATE_TIME = re.compile(rb"( ?[0-9]{1,2})-([A-Za-z]{3})-([0-9]{4}) "
                        rb"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})\Z")


def sequence_set(reader: Reader) -> SequenceSet:
    return SequenceSet.parse(reader.match(SET_CHARS, "Expected a sequence set").group())


# --- flags -------------------------------------------------------------------------------------

def flag(reader: Reader) -> str:
    if not reader.skip(b"\\"):
        return reader.atom().decode("ascii")
    word = "\\" + reader.atom().decode("ascii")
    if word.upper() == "\\RECENT":
        raise ParseError("\\Recent cannot be set by a client")
    if word.upper() not in SYSTEM_FLAGS:
        raise ParseError("Unknown system flag")
    return SYSTEM_FLAGS[word.upper()]


def flag_list(reader: Reader) -> tuple[str, ...]:
    return tuple(reader.items(lambda: flag(reader), allow_empty=True))


# --- APPEND ------------------------------------------------------------------------------------

def append(reader: Reader, tag: bytes, name: str) -> Append:
    """``APPEND mailbox [SP flag-list] [SP date-time] SP literal``."""
    box = mailbox(reader)
    reader.sp()
    flags: tuple[str, ...] = ()
    if reader.peek() == b"(":
        flags = flag_list(reader)
        reader.sp()
    when = None
    if reader.peek() == b'"':
        when = date_time(reader.quoted())
        reader.sp()
    if reader.peek() != b"{":
        raise ParseError("The message must be a literal")
    message = reader.message_literal()
    reader.end()
    return Append(tag=tag, name=name, mailbox=box, flags=flags, date=when, message=message)


def date_time(raw: bytes) -> datetime:
    """``dd-Mon-yyyy hh:mm:ss +zzzz`` (RFC 3501 §9 date-time) as an aware datetime."""
    found = _DATE_TIME.match(raw)
    if not found or found.group(2).upper().decode() not in MONTHS:
        raise ParseError("Bad date-time")
    day, month, year, hour, minute, second, sign, zone_h, zone_m = found.groups()
    try:
        zone = timedelta(hours=int(zone_h), minutes=int(zone_m))
        if int(zone_m) > 59:
            raise ValueError("zone minutes")
        return datetime(int(year), MONTHS.index(month.upper().decode()) + 1, int(day),
                        int(hour), int(minute), int(second),
                        tzinfo=timezone(-zone if sign == b"-" else zone))
    except ValueError:
        raise ParseError("Bad date-time") from None


# --- FETCH, STORE, COPY, MOVE, SEARCH, UID EXPUNGE -----------------------------------------------

def fetch(reader: Reader, tag: bytes, name: str, uid: bool) -> Fetch:
    """``FETCH sequence-set SP items [SP "(" CHANGEDSINCE SP mod-sequence ")"]``."""
    sequence = sequence_set(reader)
    reader.sp()
    items = parse_fetch_items(reader)
    changed_since, vanished = None, False
    if reader.more():
        changed_since, vanished = _fetch_modifiers(reader)
    reader.end()
    return Fetch(tag=tag, name=name, uid=uid, sequence=sequence, items=items,
                 changed_since=changed_since, vanished=vanished)


def _fetch_modifiers(reader: Reader) -> tuple[int, bool]:
    """``"(" CHANGEDSINCE SP mod-sequence-valzer [SP "VANISHED"] ")"`` (RFC 7162 §3.2.6;
    VANISHED needs CHANGEDSINCE, in either order)."""
    found: dict[str, object] = {}

    def one():
        word = reader.word()
        if word in found or word not in ("CHANGEDSINCE", "VANISHED"):
            raise ParseError("Unknown or repeated FETCH modifier")
        if word == "CHANGEDSINCE":
            reader.sp()
            found[word] = reader.number64()
        else:
            found[word] = True
        return word
    reader.items(one)
    if "CHANGEDSINCE" not in found:
        raise ParseError("VANISHED needs CHANGEDSINCE")
    return found["CHANGEDSINCE"], bool(found.get("VANISHED"))


def store(reader: Reader, tag: bytes, name: str, uid: bool) -> Store:
    """``STORE sequence-set [SP "(" UNCHANGEDSINCE SP n ")"] SP [+-]FLAGS[.SILENT] SP
    (flag-list / flag *(SP flag))``."""
    sequence = sequence_set(reader)
    reader.sp()
    unchanged_since = None
    if reader.peek() == b"(":
        unchanged_since = _modifier(reader, "UNCHANGEDSINCE")
        reader.sp()
    action = reader.match(_STORE_ACTION, "Expected FLAGS, +FLAGS or -FLAGS")
    reader.sp()
    if reader.peek() == b"(":
        flags = flag_list(reader)
    else:
        flags = [flag(reader)]
        while reader.more():
            flags.append(flag(reader))
    reader.end()
    return Store(tag=tag, name=name, uid=uid, sequence=sequence, mode=_MODES[action.group(1)],
                 silent=bool(action.group(2)), flags=tuple(flags),
                 unchanged_since=unchanged_since)


def _modifier(reader: Reader, expected: str) -> int:
    """``"(" NAME SP mod-sequence-valzer ")"``: the one modifier of FETCH or STORE."""
    reader.expect(b"(", "Expected (")
    if reader.word() != expected:
        raise ParseError("Unknown modifier")
    reader.sp()
    value = reader.number64()
    reader.expect(b")", "Expected )")
    return value


def copy_messages(reader: Reader, tag: bytes, name: str, uid: bool) -> CopyMessages:
    sequence = sequence_set(reader)
    reader.sp()
    box = mailbox(reader)
    reader.end()
    return CopyMessages(tag=tag, name=name, uid=uid, sequence=sequence, mailbox=box)


def search(reader: Reader, tag: bytes, name: str, uid: bool) -> Search:
    returns = search_returns(reader)
    charset, criteria = parse_search(reader)
    return Search(tag=tag, name=name, uid=uid, charset=charset, criteria=criteria,
                  returns=returns)


def uid_expunge(reader: Reader, tag: bytes, name: str, uid: bool) -> Expunge:
    """``UID EXPUNGE sequence-set`` (RFC 4315 §2.1); plain EXPUNGE takes no argument."""
    sequence = sequence_set(reader)
    reader.end()
    return Expunge(tag=tag, name=name, uid=uid, sequence=sequence)
