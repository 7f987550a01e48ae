"""The ``body`` test's transforms: the strings a message body is matched as.

Why the email package: the body test is rare and reads at most ``BODY_LIMIT`` octets
(message_view.py); what it needs -- the MIME tree, transfer decoding, charsets -- is what
the standard library's parser does, and its result is kept per message, so several body
tests on one message parse it once.  The walk over the parts is ours and iterative, with
bounds (``MAX_PARTS``, ``MAX_DEPTH``); the email package's parser itself recurses into
nested multiparts, and a message nested past Python's recursion limit (thousands of
levels) fails the test with a script error: the message is kept in INBOX.

``:raw`` is the undecoded body as one string; ``:content`` the parts of the given types,
each decoded to text on its own (a multipart's prologue and epilogue, a message/rfc822's
header); ``:text`` is ``:content "text"`` with HTML markup removed and its runs of white
space made single spaces (§5.3 lets an implementation strip mark-up).  A message without a blank line has no body: every body
test is false (RFC 5173 §4).

Standards: RFC 5173 §4, §5.1, §5.2, §5.3; RFC 2045 §6 (transfer encodings).
"""

from __future__ import annotations

import html
import re
from email import message_from_bytes
from email.message import Message

from mailstack.sieve.arguments import ScriptError
from mailstack.sieve.message_view import MessageView

MAX_PARTS = 500
MAX_DEPTH = 50
_TAG = re.compile(r"<[^>]*>")
_HIDDEN = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)


def strings(message: MessageView, transform: str, types: tuple[str, ...] = ()) -> tuple[str, ...]:
    """What ``body <transform>`` matches against, computed once per message."""
    key = (transform, types)
    found = message.memo.get(key)
    if found is None:
        found = message.memo[key] = _strings(message, transform, types)
    return found


def _strings(message: MessageView, transform: str, types: tuple[str, ...]) -> tuple[str, ...]:
    octets = message.body()
    if octets is None:
        return ()
    if transform == ":raw":
        return (octets.decode("utf-8", "replace"),)
    root = message.memo.get("tree")
    if root is None:
        root = message.memo["tree"] = _parse(message, octets)
    if transform == ":text":
        return tuple(_plain(part, text) for part, text in _content(root, ("text",)))
    return tuple(text for _, text in _content(root, types))


def _parse(message: MessageView, octets: bytes) -> Message:
    try:
        return message_from_bytes(message.header_block().rstrip(b"\r\n") + b"\r\n\r\n"
                                  + octets)
    except Exception:           # the email package on hostile input: any of its errors
        raise ScriptError("the message body could not be read") from None


def type_matches(wanted: str, content_type: str) -> bool:
    """RFC 5173 §5.2: "" all types; "type/sub" exactly; "type" any subtype; a type
    that begins or ends with "/" or has two slashes, none."""
    if wanted == "":
        return True
    if wanted.startswith("/") or wanted.endswith("/") or wanted.count("/") > 1:
        return False
    wanted = wanted.lower()
    if "/" in wanted:
        return content_type == wanted
    return content_type.split("/", 1)[0] == wanted


def _content(root: Message, types: tuple[str, ...]):
    """(part, text) for each part whose type is wanted, in document order."""
    stack, seen = [(root, 0)], 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        kind = part.get_content_type()
        wanted = any(type_matches(one, kind) for one in types)
        children = part.get_payload() if part.is_multipart() else []
        if kind == "message/rfc822" and children:
            if wanted:
                yield part, _header_text(children[0])
        elif part.is_multipart():
            if wanted:
                yield from ((part, text) for text in (part.preamble, part.epilogue) if text)
        elif wanted:
            yield part, _decoded(part)
        if depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(children))


def _header_text(message: Message) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in message.items())


def _decoded(part: Message) -> str:
    """A leaf's content, transfer encoding removed, converted from its charset."""
    payload = part.get_payload(decode=True) or b""
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset, "replace")
    except LookupError:                      # an unknown charset: as UTF-8
        return payload.decode("utf-8", "replace")


def _plain(part: Message, text: str) -> str:
    if part.get_content_subtype() != "html":
        return text
    return " ".join(html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", text))).split())
