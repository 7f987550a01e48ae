"""A message's own header read once, for everything stored beside it.

Why: storing a message derives three things from its header -- the search headers
(store/search_facts.py), the MIME structure (mime_tree.py) and the IMAP ENVELOPE
(envelope.py) -- and each used to read the header with a parser of its own: the email
package's, which is slow (two thirds of a delivery's analysis, issue 16), and two regular
expression passes.  ``read_head`` splits the header into its fields once, with one
regular expression; the address fields met by both the ENVELOPE and the search headers
are parsed once (``Head.addresses``).

Why only a plain header: each consumer keeps its exact semantics, which differ on broken
input -- the email package breaks lines at a bare CR and ends the header at a line that
is no field, while the MIME scan unfolds by LF alone.  On a plain header, every line a
field (``name:``, the name printable ASCII) or its continuation, every line break CRLF,
they agree, and the one pass stands in for both (tests/unit/test_message_head.py compares
them on broken and random headers).  Anything else -- a bare CR or LF, a line that is no
field, no blank line within ``limit`` -- gives None, and the callers use their general
parsers: the stored facts are the same octets either way.

Standards: RFC 5322 §2.2 (fields), §2.2.3 (folding).
"""

from __future__ import annotations

import re

from mailstack.message.address_list import Address, parse_addresses

HEADER_LIMIT = 1 << 20   # octets searched for the blank line that ends the header

# A field: its name (printable ASCII but the colon, as the email package's ``headerRE``),
# its value up to the CRLF that is not followed by a continuation's white space.
_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")


class Head:
    """The fields of a plain header: ``fields`` [(name as written, raw value)], the value
    being the octets after the colon up to the field's final CRLF (continuations kept)."""

    __slots__ = ("fields", "end", "_parsed")

    def __init__(self, fields: list[tuple[str, bytes]], end: int):
        self.fields = fields
        self.end = end              # where the blank line starts: the body is at end + 2
        self._parsed: dict[bytes, tuple[Address, ...]] = {}

    def first(self, wanted: frozenset[str]) -> dict[str, bytes]:
        """What ``header_fields.first_fields`` finds in this header: the first occurrence
        of each wanted field, lower-case name -> value unfolded and trimmed."""
        found: dict[str, bytes] = {}
        for name, value in self.fields:
            name = name.lower()
            if name in wanted and name not in found:
                found[name] = value.replace(b"\r\n", b"").strip(b" \t\r")
        return found

    def addresses(self, value: bytes) -> tuple[Address, ...]:
        """``parse_addresses(value)``, once per distinct value of this message: From and
        To are read for the ENVELOPE and again for the search headers."""
        parsed = self._parsed.get(value)
        if parsed is None:
            parsed = self._parsed[value] = parse_addresses(value)
        return parsed


def read_head(body: bytes, limit: int = HEADER_LIMIT) -> Head | None:
    """The fields of the message's header, or None when it is not plain (module doc)."""
    end = body.find(b"\r\n\r\n", 0, limit)
    if end <= 0:
        return None
    fields, pos, stop = [], 0, end + 2
    for found in _FIELD.finditer(body, 0, stop):
        if found.start() != pos:
            return None
        fields.append((found.group(1).decode("ascii"), found.group(2)))
        pos = found.end()
    if pos != stop:
        return None
    return Head(fields, end)
