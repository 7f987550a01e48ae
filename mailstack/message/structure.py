"""The MIME structure of a stored message, with byte offsets into the stored bytes.

Why: ``analyse`` runs once, when a message is stored; its ``Part`` tree is kept as JSON
next to the message.  Every FETCH of a body section is then a slice of the stored bytes
(``Part.section``), BODYSTRUCTURE and ENVELOPE are rendered from the tree, and nothing on
the read path parses mail.  Sections are never re-serialised: what the client receives is
what was stored (only HEADER.FIELDS joins selected lines).

A part's header is ``raw[header_start:body_start]`` (with the blank line that ends it);
its body is ``raw[body_start:end]``.  The top-level Part is the message itself.  A
message/rfc822 (or message/global) part holds the encapsulated message in ``message``,
whose offsets lie inside the part's body; every message (top level or encapsulated) has
an ``envelope``.  Text values are ``str`` decoded as UTF-8 with ``surrogateescape``, so
``to_json`` is ASCII (json escapes the rest, NUL included) and loses no byte.

Sections that do not exist: ``section`` returns None, never raises, and the IMAP layer
chooses the answer -- an empty string, or NIL (``msg-att-static`` carries an nstring,
RFC 3501 §9) -- so one missing part does not fail a whole FETCH.  A section does not exist
when a part number is 0 or beyond the last part, when it descends into a part that is
neither multipart nor message/rfc822, when HEADER/TEXT/HEADER.FIELDS name a part that is
not message/rfc822 (RFC 3501 §6.4.5), and for MIME without a part number.

Standards: RFC 3501 §6.4.5 (section numbering), RFC 2045, RFC 2046.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields

from mailstack.message.envelope import Envelope
from mailstack.message.head import Head
from mailstack.message.header_fields import selected_lines
from mailstack.message.mime_params import Params, param_value
from mailstack.message.mime_tree import Node, scan

SECTION_TEXTS = ("", "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT", "MIME")


@dataclass(frozen=True)
class Part:
    header_start: int
    body_start: int
    end: int
    body_lines: int = 0
    type: str = "text"                  # lower case, as are subtype and encoding
    subtype: str = "plain"
    params: Params = (("charset", "us-ascii"),)
    id: str | None = None
    description: str | None = None
    encoding: str = "7bit"
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: tuple[str, ...] = ()
    location: str | None = None
    children: tuple[Part, ...] = ()     # of a multipart, in order
    message: Part | None = None         # of a message/rfc822 or message/global part
    envelope: Envelope | None = None    # of a message: the top level or ``message``

    @property
    def body_size(self) -> int:
        return self.end - self.body_start

    @property
    def is_multipart(self) -> bool:
        return self.type == "multipart"

    def content_param(self, name: str) -> str | None:
        """A Content-Type parameter, RFC 2231 decoded (``name*`` preferred)."""
        return param_value(self.params, name)

    def disposition_param(self, name: str) -> str | None:
        """A Content-Disposition parameter (``filename``), RFC 2231 decoded."""
        return param_value(self.disposition_params, name)

    def section(self, raw: bytes, part_path: tuple[int, ...] = (), text: str = "",
                fields: tuple[str, ...] = ()) -> bytes | None:
        """The bytes of BODY[section] (RFC 3501 §6.4.5), or None if there is no such part.

        ``raw`` is the stored message this tree was analysed from; ``text`` is "", HEADER,
        HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME; ``fields`` names the header fields.
        """
        found = self.span(part_path, text)
        if found is None:
            return None
        start, end = found
        if text.upper().startswith("HEADER.FIELDS"):
            return selected_lines(raw[start:end], fields, text.upper() == "HEADER.FIELDS")
        return raw[start:end]

    def span(self, part_path: tuple[int, ...] = (), text: str = "") -> tuple[int, int] | None:
        """Where BODY[section] lies in the stored message: (start, end) octets, or None.

        For HEADER.FIELDS(.NOT) it is the header the fields are chosen from.  A large
        message's section is read by this span alone (store/body_ranges.py), never whole.
        """
        text = text.upper()
        if text not in SECTION_TEXTS:
            raise ValueError(f"not a section text: {text!r}")
        found = self._locate(part_path)
        if found is None:
            return None
        part, as_message = found
        if text == "MIME":
            return None if as_message else (part.header_start, part.body_start)
        if text == "":
            return (part.header_start if as_message else part.body_start), part.end
        message = part if as_message else part.message
        if message is None:
            return None
        if text == "TEXT":
            return message.body_start, message.end
        return message.header_start, message.body_start

    def _locate(self, path: tuple[int, ...]) -> tuple[Part, bool] | None:
        """The part a section path names, and whether it stands as a whole message."""
        part, as_message = self, True
        for number in path:
            if not as_message and part.message is not None:
                part, as_message = part.message, True
            if part.is_multipart:
                if not 1 <= number <= len(part.children):
                    return None
                part, as_message = part.children[number - 1], False
            elif as_message and number == 1:
                as_message = False      # a non-multipart message's part 1 is its body
            else:
                return None
        return part, as_message

    def to_dict(self) -> dict:
        out = {}
        for name, default in _FIELDS:
            value = getattr(self, name)
            if default is not MISSING and value == default:
                continue
            if name == "children":
                value = [child.to_dict() for child in value]
            elif name in ("message", "envelope"):
                value = value.to_dict()
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Part:
        values = dict(data)
        for name in ("params", "disposition_params"):
            if name in values:
                values[name] = tuple(tuple(pair) for pair in values[name])
        if "language" in values:
            values["language"] = tuple(values["language"])
        values["children"] = tuple(cls.from_dict(c) for c in values.get("children", ()))
        if "message" in values:
            values["message"] = cls.from_dict(values["message"])
        if "envelope" in values:
            values["envelope"] = Envelope.from_dict(values["envelope"])
        return cls(**values)

    def to_json(self) -> str:
        """Compact ASCII JSON without NUL characters: fit for a database TEXT column."""
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Part:
        return cls.from_dict(json.loads(text))


_FIELDS = tuple((field.name, field.default) for field in fields(Part))   # once, not per part


def _frozen(node: Node) -> Part:
    return Part(node.header_start, node.body_start, node.end, node.lines, **node.mime,
                children=tuple(_frozen(child) for child in node.children),
                message=_frozen(node.message) if node.message is not None else None,
                envelope=node.envelope)


def analyse(raw: bytes, head: Head | None = None) -> Part:
    """The MIME structure of a stored message; never raises, linear in its size.

    ``head``: ``message/head.py``'s reading of its header, when the caller has one."""
    return _frozen(scan(raw, head))
