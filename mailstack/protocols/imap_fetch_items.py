"""FETCH data items: ``(FLAGS BODY.PEEK[1.HEADER.FIELDS (From To)]<0.2048>)`` and macros.

Why ours: the session needs each item once, validated, in a form it can answer without
re-reading the request, and the response must name the item exactly as RFC 3501 §7.4.2
says (``FetchItem.label``).  Twisted's parser also accepted part number 0 and MIME on the
whole message; here both are BAD.  MODSEQ is RFC 7162's; BINARY (RFC 3516) is not
advertised, so it is an unknown item like any other.

Standards: RFC 3501 §6.4.5 and §9 (fetch-att, section, partial), RFC 9051 §6.4.5.
Security: part numbers are at most ``MAX_PART_DEPTH`` deep and each at most 10 digits;
the header list is one level of ``Reader.items``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstack.protocols.imap_tokens import ASTRING_ATOM, MAX_NUMBER, ParseError, Reader

MAX_PART_DEPTH = 100
SIMPLE_ITEMS = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY",
                          "BODYSTRUCTURE", "RFC822", "RFC822.HEADER", "RFC822.TEXT",
                          "MODSEQ"})
MACROS = {"FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
          "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
          "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY")}
_TEXTS_ANYWHERE = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT")
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")
_PART = re.compile(rb"[0-9]+(?:\.[0-9]+)*")
_SECTION_TEXT = re.compile(rb"[A-Za-z.]+")
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")         # RFC 5322 ftext


@dataclass(frozen=True)
class Section:
    part: tuple[int, ...]           # () = the whole message; (1, 2) = part 1.2 (numbers >= 1)
    text: str                       # "" | "HEADER" | "HEADER.FIELDS" | "HEADER.FIELDS.NOT"
    #                                 | "TEXT" | "MIME"
    fields: tuple[str, ...] = ()    # HEADER.FIELDS names (astrings, as sent)

    def spelling(self) -> bytes:
        """The section as a response names it: ``1.HEADER.FIELDS (From To)``."""
        words = [".".join(map(str, self.part)).encode()] if self.part else []
        if self.text:
            words.append(self.text.encode())
        spelled = b".".join(words)
        if self.fields:
            spelled += b" (" + b" ".join(_astring(f.encode("ascii")) for f in self.fields) + b")"
        return spelled


@dataclass(frozen=True)
class FetchItem:
    name: str                       # "FLAGS", "UID", ..., "RFC822.TEXT" or "BODY[]"
    section: Section | None = None  # for "BODY[]" only
    peek: bool = False
    partial: tuple[int, int] | None = None      # (start, length) of <start.length>

    def label(self) -> bytes:
        """The item's name in the response: ``BODY[1.HEADER.FIELDS (From To)]<0>``.

        BODY.PEEK answers as BODY; a partial shows only its origin (RFC 3501 §7.4.2).
        """
        if self.section is None:
            return self.name.encode()
        label = b"BODY[" + self.section.spelling() + b"]"
        return label + b"<%d>" % self.partial[0] if self.partial else label


def _astring(word: bytes) -> bytes:
    if ASTRING_ATOM.fullmatch(word):
        return word
    return b'"' + word.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse_fetch_items(reader: Reader) -> tuple[FetchItem, ...]:
    """``ALL`` / ``FULL`` / ``FAST`` / one item / ``(item *(SP item))``."""
    if reader.peek() == b"(":
        return tuple(reader.items(lambda: fetch_item(reader)))
    found = _ITEM_NAME.match(reader.raw, reader.pos)
    macro = found and found.group().upper().decode()
    if macro in MACROS and reader.raw[found.end():found.end() + 1] in (b"", b" "):
        reader.pos = found.end()
        return tuple(FetchItem(name) for name in MACROS[macro])
    return (fetch_item(reader),)


def fetch_item(reader: Reader) -> FetchItem:
    name = reader.match(_ITEM_NAME, "Expected a FETCH item").group().upper().decode()
    if name in ("BODY", "BODY.PEEK") and reader.skip(b"["):
        section = _section(reader)
        return FetchItem("BODY[]", section, name == "BODY.PEEK", _partial(reader))
    if name in SIMPLE_ITEMS:
        return FetchItem(name)
    raise ParseError("Unknown FETCH item")


def _section(reader: Reader) -> Section:
    """After ``[``: ``[section-part ["." section-text]] / section-msgtext`` and ``]``."""
    part = _part(reader)
    text, fields = "", ()
    if (reader.skip(b".") if part else reader.peek() != b"]"):
        text = reader.match(_SECTION_TEXT, "Bad section").group().upper().decode()
        if text not in _TEXTS_ANYWHERE and not (text == "MIME" and part):
            raise ParseError("Bad section")
        if text.startswith("HEADER.FIELDS"):
            reader.sp()
            fields = tuple(reader.items(lambda: _field_name(reader.astring())))
    reader.expect(b"]", "Expected ] after section")
    return Section(part, text, fields)


def _part(reader: Reader) -> tuple[int, ...]:
    found = _PART.match(reader.raw, reader.pos)
    if not found:
        return ()
    numbers = found.group().split(b".")
    if len(numbers) > MAX_PART_DEPTH:
        raise ParseError("Section part nested too deep")
    for number in numbers:
        if number.startswith(b"0") or len(number) > 10 or int(number) > MAX_NUMBER:
            raise ParseError("Bad section part number")
    reader.pos = found.end()
    return tuple(int(n) for n in numbers)


def _field_name(raw: bytes) -> str:
    if not _FIELD_NAME.match(raw):
        raise ParseError("Bad header field name")
    return raw.decode("ascii")


def _partial(reader: Reader) -> tuple[int, int] | None:
    if not reader.skip(b"<"):
        return None
    start = reader.number()
    reader.expect(b".", "Expected . in partial")
    length = reader.nz_number()
    reader.expect(b">", "Expected > after partial")
    return start, length
