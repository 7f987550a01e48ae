"""One pass over a stored message that finds its MIME parts and their byte offsets.

Why one pass: boundaries are found by scanning the message once, keeping a stack of the
multipart parts still open, so the work is linear in the message size however deep the
nesting (a boundary line closes every part nested inside its multipart, RFC 2046 §5.1.2).
Nothing here recurses; nesting deeper than MAX_DEPTH and parts beyond MAX_PARTS are not
opened: such a part is an opaque leaf, reported as application/octet-stream.

Boundaries: a delimiter line is ``--boundary`` with optional trailing whitespace (the
close delimiter adds ``--``); the line break before it belongs to the delimiter, so a
part's body ends before that CRLF -- unless the line break already ends a header cut short
by the delimiter, or another delimiter line.  Lines may end in CRLF or a bare LF.  A multipart
without a boundary parameter is an invalid Content-Type and gets the RFC 2045 §5.2
default; message/rfc822 (or message/global) is opened only when its transfer encoding is
an identity (RFC 2046 §5.2.1), otherwise it too is opaque.

Standards: RFC 2045 §5.2, §6; RFC 2046 §5.1.1, §5.1.2, §5.1.5 (digest), §5.2.1;
RFC 6532 §3.7 (message/global).
"""

from __future__ import annotations

import re

from mailstack.message.envelope import Envelope, envelope_of
from mailstack.message.head import Head
from mailstack.message.header_fields import ENVELOPE_FIELDS, MIME_FIELDS, first_fields
from mailstack.message.mime_params import (content_type, disposition, languages,
                                           param_value, text_of, token)

MAX_DEPTH = 100
MAX_PARTS = 5000
_LONGEST_BOUNDARY_LINE = 1000
_HEADER_STOP = re.compile(rb"\n(?:\r?\n|--)")
_ENCAPSULATING = {("message", "rfc822"), ("message", "global")}
_IDENTITY_ENCODINGS = {"7bit", "8bit", "binary"}
_MESSAGE_FIELDS = MIME_FIELDS | ENVELOPE_FIELDS
_TEXT_PLAIN = ("text", "plain", (("charset", "us-ascii"),))
_MESSAGE = ("message", "rfc822", ())
_OPAQUE = {"type": "application", "subtype": "octet-stream", "params": ()}


class Node:
    """A part while the scan is under way; ``structure`` freezes it into a ``Part``."""

    __slots__ = ("header_start", "body_start", "end", "lines", "body_lf", "depth",
                 "in_digest", "is_message", "mime", "envelope", "boundary", "children",
                 "message", "active")

    def __init__(self, header_start: int, depth: int, in_digest: bool, is_message: bool):
        self.header_start, self.depth = header_start, depth
        self.in_digest, self.is_message = in_digest, is_message
        self.body_start = self.end = header_start
        self.lines = self.body_lf = 0
        self.mime: dict = {}
        self.envelope: Envelope | None = None
        self.boundary = b""
        self.children: list[Node] = []
        self.message: Node | None = None
        self.active = False


def mime_fields(found: dict[str, bytes], in_digest: bool) -> dict:
    """The Part fields described by a part's MIME header, with the RFC 2045 defaults."""
    text = {name: text_of(value) for name, value in found.items() if name in MIME_FIELDS}
    parsed = content_type(text.get("content-type"))
    if parsed and parsed[0] == "multipart" and not _boundary(parsed[2]):
        parsed = None
    kind, subtype, params = parsed or (_MESSAGE if in_digest else _TEXT_PLAIN)
    if kind == "text" and not any(name in ("charset", "charset*") for name, _ in params):
        params += (("charset", "us-ascii"),)
    shown = disposition(text.get("content-disposition"))
    return {
        "type": kind, "subtype": subtype, "params": params,
        "id": text.get("content-id") or None,
        "description": text.get("content-description") or None,
        "encoding": token(text.get("content-transfer-encoding")) or "7bit",
        "md5": text.get("content-md5") or None,
        "disposition": shown[0] if shown else None,
        "disposition_params": shown[1] if shown else (),
        "language": languages(text.get("content-language")),
        "location": text.get("content-location") or None,
    }


def _boundary(params) -> bytes:
    value = (param_value(params, "boundary") or "").rstrip(" \t")
    return value.encode("utf-8", "surrogateescape") if len(value) < 900 else b""


class _Scan:
    def __init__(self, raw: bytes, head: Head | None = None):
        self.raw, self.size = raw, len(raw)
        self.head = head                            # the top-level header, read already
        self.chain: list[Node] = []                 # the open parts, outermost first
        self.active: dict[bytes, list[Node]] = {}   # boundary -> multiparts awaiting it
        self.parts = 0
        self.lf_pos = self.lf_count = 0

    def run(self) -> Node:
        root = self._new(0, None, is_message=True)
        pos = self._open(root)
        while (hit := self._next_boundary(pos)) is not None:
            pos = self._at_boundary(*hit)
        while self.chain:
            self._finish(self.chain.pop(), self.size)
        return root

    def _new(self, header_start: int, parent: Node | None, is_message: bool) -> Node | None:
        if self.parts >= MAX_PARTS:
            return None
        self.parts += 1
        if parent is None:
            return Node(header_start, 0, False, is_message)
        in_digest = not is_message and parent.mime["subtype"] == "digest"
        return Node(header_start, parent.depth + 1, in_digest, is_message)

    def _open(self, node: Node) -> int:
        """Reads the header of ``node`` and of any message it encapsulates; body position."""
        while True:
            self.chain.append(node)
            self._read_header(node)
            nested = self._begin_body(node)
            if nested is None:
                return node.body_start
            node = nested

    def _read_header(self, node: Node) -> None:
        node.body_start = self._header_end(node.header_start)
        node.body_lf = self._lf(node.body_start)
        wanted = _MESSAGE_FIELDS if node.is_message else MIME_FIELDS
        if node.header_start == 0 and node.depth == 0 and self.head is not None:
            found = self.head.first(wanted)       # the same fields (message/head.py)
            node.envelope = envelope_of(found, self.head.addresses)
        else:
            found = first_fields(self.raw[node.header_start:node.body_start], wanted)
            node.envelope = envelope_of(found) if node.is_message else None
        node.mime = mime_fields(found, node.in_digest)

    def _header_end(self, start: int) -> int:
        """Where the body starts: after the blank line, or at a boundary that cuts it."""
        raw = self.raw
        if raw.startswith(b"\r\n", start) or raw.startswith(b"\n", start):
            return start + (2 if raw[start] == 13 else 1)
        if raw.startswith(b"--", start) and self._match(start):
            return start
        pos = start
        while (stop := _HEADER_STOP.search(raw, pos)) is not None:
            if not stop.group().endswith(b"--"):
                return stop.end()
            pos = stop.start() + 1
            if self._match(pos):
                return pos
        return self.size

    def _begin_body(self, node: Node) -> Node | None:
        """Opens a multipart or encapsulated message; the nested message, if any."""
        mime = node.mime
        if mime["type"] == "multipart" and node.depth < MAX_DEPTH:
            node.boundary, node.active = _boundary(mime["params"]), True
            self.active.setdefault(node.boundary, []).append(node)
            return None
        identity = mime["encoding"] in _IDENTITY_ENCODINGS
        if (mime["type"], mime["subtype"]) in _ENCAPSULATING and identity \
                and node.depth < MAX_DEPTH:
            node.message = self._new(node.body_start, node, is_message=True)
            if node.message is not None:
                return node.message
        if mime["type"] == "multipart" or (mime["type"], mime["subtype"]) in _ENCAPSULATING:
            node.mime = {**mime, **_OPAQUE}
        return None

    def _match(self, pos: int) -> tuple[Node, bool, int] | None:
        """(multipart, is the close delimiter, line end) if the line at ``pos`` is one."""
        if not self.active:
            return None
        raw, limit = self.raw, pos + _LONGEST_BOUNDARY_LINE
        line_end = raw.find(b"\n", pos, limit)
        if line_end < 0:
            if limit < self.size:
                return None
            line_end = self.size
        candidate = raw[pos + 2:line_end].rstrip(b" \t\r")
        if owners := self.active.get(candidate):
            return owners[-1], False, line_end
        if candidate.endswith(b"--") and (owners := self.active.get(candidate[:-2])):
            return owners[-1], True, line_end
        return None

    def _next_boundary(self, pos: int) -> tuple[int, tuple[Node, bool, int]] | None:
        raw = self.raw
        if (pos == 0 or raw[pos - 1] == 10) and raw.startswith(b"--", pos):
            if hit := self._match(pos):
                return pos, hit
        while self.active and (found := raw.find(b"\n--", pos)) >= 0:
            pos = found + 1
            if hit := self._match(pos):
                return pos, hit
        return None

    def _at_boundary(self, pos: int, hit: tuple[Node, bool, int]) -> int:
        """Ends the parts the delimiter at ``pos`` closes; where scanning resumes."""
        owner, closing, line_end = hit
        end = pos
        if pos > 0 and self.raw[pos - 1] == 10:
            end = pos - 2 if pos > 1 and self.raw[pos - 2] == 13 else pos - 1
        while self.chain[-1] is not owner:     # innermost first; none ends before it
            end = self._finish(self.chain.pop(), end)
        after = min(line_end + 1, self.size)
        if closing:
            self._deactivate(owner)
            return after
        child = self._new(after, owner, is_message=False)
        if child is None:
            return after
        owner.children.append(child)
        return self._open(child)

    def _finish(self, node: Node, end: int) -> int:
        node.end = max(end, node.body_start)
        partial = node.end > node.body_start and self.raw[node.end - 1] != 10
        node.lines = self._lf(node.end) - node.body_lf + partial
        if node.active:
            self._deactivate(node)
        return node.end

    def _deactivate(self, node: Node) -> None:
        owners = self.active[node.boundary]
        if owners[-1] is node:      # always so: inner parts close before outer ones
            owners.pop()
        else:
            owners.remove(node)
        if not owners:
            del self.active[node.boundary]
        node.active = False

    def _lf(self, pos: int) -> int:
        """Line feeds before ``pos``; positions asked for only ever step back a little."""
        if pos >= self.lf_pos:
            self.lf_count += self.raw.count(b"\n", self.lf_pos, pos)
        else:
            self.lf_count -= self.raw.count(b"\n", pos, self.lf_pos)
        self.lf_pos = pos
        return self.lf_count


def scan(raw: bytes, head: Head | None = None) -> Node:
    """The part tree of ``raw``; never raises, linear in ``len(raw)``.

    ``head`` is ``read_head(raw)`` when the caller has it: the top-level header is then
    not read again."""
    return _Scan(raw, head).run()
