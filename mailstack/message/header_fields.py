"""Header blocks: the fields analysis needs, unfolded, and HEADER.FIELDS selections.

Why here: the MIME analysis and the envelope both read a header block once, when the
message is stored; FETCH BODY[HEADER.FIELDS (...)] later selects raw lines from it.  Lines
end in CRLF as stored, but a bare LF is accepted everywhere (broken or hostile input).

Standards: RFC 5322 §2.2 (fields), §2.2.3 (unfolding), RFC 3501 §6.4.5 (HEADER.FIELDS).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

MIME_FIELDS = frozenset({
    "content-type", "content-transfer-encoding", "content-id", "content-description",
    "content-md5", "content-disposition", "content-language", "content-location",
})
ENVELOPE_FIELDS = frozenset({
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to",
    "message-id",
})
_WSP = (b" ", b"\t")
_FIELD_END = re.compile(rb"\n(?![ \t])")      # a line break not followed by a continuation
_FOLD = re.compile(rb"\r?\n(?=[ \t])")


@lru_cache(maxsize=8)
def _field_starts(wanted: frozenset[str]) -> re.Pattern:
    """Lines that start one of the wanted fields (``Name:``, obsolete ``Name :`` too)."""
    names = b"|".join(re.escape(name.encode()) for name in sorted(wanted))
    return re.compile(rb"^(" + names + rb")[ \t]*:", re.IGNORECASE | re.MULTILINE)


def _line_content(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _unfolded(block: bytes, pos: int) -> bytes:
    """The value starting at ``pos`` with its continuation lines, unfolded (RFC 5322 §2.2.3)."""
    end = _FIELD_END.search(block, pos)
    value = block[pos:end.start() if end else len(block)]
    return _FOLD.sub(b"", value).strip(b" \t\r")


def first_fields(block: bytes, wanted: frozenset[str]) -> dict[str, bytes]:
    """First occurrence of each wanted field: lower-case name -> value, unfolded and trimmed.

    Unfolding removes the line break before a continuation's whitespace, so
    ``boundary="foo\\r\\n bar"`` reads ``boundary="foo bar"``.  Only the wanted fields are
    looked at, by a regular expression: a header of a million lines costs no Python loop.
    """
    found: dict[str, bytes] = {}
    for start in _field_starts(wanted).finditer(block):
        name = start.group(1).lower().decode("ascii")
        if name not in found:
            found[name] = _unfolded(block, start.end())
            if len(found) == len(wanted):
                break
    return found


def _lines(block: bytes) -> Iterator[bytes]:
    """The lines of a block with their line ends, up to (not including) the blank line."""
    pos, size = 0, len(block)
    while pos < size:
        nl = block.find(b"\n", pos)
        end = size if nl < 0 else nl + 1
        line = block[pos:end]
        if not _line_content(line.rstrip(b"\n")):
            return
        yield line
        pos = end


def selected_lines(block: bytes, names: Iterable[str], wanted: bool) -> bytes:
    """HEADER.FIELDS (wanted=True) or HEADER.FIELDS.NOT: raw lines, then a blank line.

    Names compare case-insensitively; a field keeps its continuation lines.  The lines are
    slices of the stored header; only a last line stored without a line end gets CRLF.
    """
    names = {name.lower() for name in names}
    kept, keep = [], False
    for line in _lines(block):
        if line[:1] not in _WSP:
            name = line.split(b":", 1)[0].strip().lower().decode("latin-1")
            keep = (name in names) == wanted
        if keep:
            kept.append(line if line.endswith(b"\n") else line + b"\r\n")
    kept.append(b"\r\n")
    return b"".join(kept)
