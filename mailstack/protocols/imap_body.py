"""BODY, BODYSTRUCTURE and ENVELOPE rendered from a stored message's ``Part`` tree.

Why here: the tree is computed once when a message is stored (``mailstack.message``);
these functions only write it in IMAP syntax, so FETCH never parses mail.  Type, subtype,
encoding, parameter names and the disposition type are written upper-case as in the
RFC 3501 examples (clients compare them case-insensitively; imaptest's expectations
mix cases).  A text/* part without a charset reports ``("CHARSET" "us-ascii")`` (the
analysis fills in RFC 2046 §4.1.2's default), and a multipart in which no part was found
reports one empty text/plain part, since the grammar requires at least one (``1*body``).

Standards: RFC 3501 §7.4.2 (BODY, BODYSTRUCTURE, ENVELOPE) and §9 (body, envelope);
RFC 9051 §7.5.2 (message/global answers like message/rfc822).
Security: every value taken from a message (subjects, addresses, parameters, file names)
is written through ``imap_format``, so none can end the response line or smuggle in a
response; the recursion follows the tree stored at delivery, whose depth and number of
parts the analysis caps (``message/mime_tree.py``: MAX_DEPTH, MAX_PARTS).
"""

from __future__ import annotations

from mailstack.message.envelope import Envelope
from mailstack.message.structure import Part
from mailstack.protocols.imap_format import NIL, Atom, nstring, render

_ENCAPSULATING = {("message", "rfc822"), ("message", "global")}
_EMPTY_TEXT = Part(0, 0, 0)


def _addresses(addresses) -> bytes:
    """``(addr)(addr)...`` without separators, as RFC 3501 §9 writes ``1*address``."""
    if not addresses:
        return NIL
    return b"(" + b"".join(render(list(address)) for address in addresses) + b")"


def envelope(env: Envelope) -> bytes:
    """The parenthesised ENVELOPE: date subject from sender reply-to to cc bcc
    in-reply-to message-id."""
    parts = [nstring(env.date), nstring(env.subject)]
    parts += [_addresses(getattr(env, name))
              for name in ("from_", "sender", "reply_to", "to", "cc", "bcc")]
    parts += [nstring(env.in_reply_to), nstring(env.message_id)]
    return b"(" + b" ".join(parts) + b")"


def _params(params) -> object:
    if not params:
        return None
    return [item for name, value in params for item in (name.upper(), value)]


def _disposition(part: Part) -> object:
    if part.disposition is None:
        return None
    return [part.disposition.upper(), _params(part.disposition_params)]


def _language(part: Part) -> object:
    if not part.language:
        return None
    return part.language[0] if len(part.language) == 1 else list(part.language)


def _extension(part: Part) -> list:
    return [_disposition(part), _language(part), part.location]


def _single(part: Part, extended: bool) -> list:
    fields = [part.type.upper(), part.subtype.upper(), _params(part.params), part.id,
              part.description, part.encoding.upper(), part.body_size]
    if (part.type, part.subtype) in _ENCAPSULATING and part.message is not None:
        fields += [Atom(envelope(part.message.envelope or Envelope())),
                   Atom(bodystructure(part.message, extended)), part.body_lines]
    elif part.type == "text":
        fields.append(part.body_lines)
    if extended:
        fields += [part.md5] + _extension(part)
    return fields


def _multipart(part: Part, extended: bool) -> bytes:
    children = part.children or (_EMPTY_TEXT,)
    inner = b"".join(bodystructure(child, extended) for child in children)
    tail = [part.subtype.upper()]
    if extended:
        tail += [_params(part.params)] + _extension(part)
    return b"(" + inner + b" " + b" ".join(render(item) for item in tail) + b")"


def bodystructure(part: Part, extended: bool) -> bytes:
    """BODYSTRUCTURE of ``part`` when ``extended``, else the non-extensible BODY."""
    if part.is_multipart:
        return _multipart(part, extended)
    return render(_single(part, extended))
