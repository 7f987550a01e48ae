"""MIME header values: Content-Type, Content-Disposition, Content-Language, tokens.

Why lenient: stored mail is whatever arrived.  A value that cannot be read as the RFC
says falls back to the RFC 2045 §5.2 default instead of failing; unquoted parameter values
with characters the grammar forbids (``boundary=----=_Part_1``, common in the wild) are
read up to the next ``;``.  RFC 2231 continuations (``name*0=``, ``name*1*=``) are joined
into one parameter; when any piece is charset-encoded the result is ``name*`` holding
``charset'language'%XX...`` -- still ASCII, so BODYSTRUCTURE can pass it on to clients,
which decode it (``param_value`` decodes it for our own use).

Values are ``str`` decoded from the header bytes as UTF-8 with ``surrogateescape``, so any
byte survives the round trip (``.encode("utf-8", "surrogateescape")``).

Standards: RFC 2045 §5.1, §5.2, §6.1; RFC 2183 (disposition); RFC 2231 §3, §4;
RFC 3282 (Content-Language).
"""

from __future__ import annotations

import codecs
import re
from urllib.parse import quote, unquote_to_bytes

Params = tuple[tuple[str, str], ...]
MAX_PARAMS = 64
_NOT_TOKEN = re.compile(r'[\x00- ()<>@,;:\\"/\[\]?=]')   # a control, space or tspecial
_SECTION = re.compile(r"(.+?)\*([0-9]{1,3})(\*?)\Z")
_ATTRIBUTE_CHARS = "!#$&+-.^_`|~"    # RFC 2231 attribute-char, besides letters and digits


def text_of(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def without_comments(text: str) -> str:
    """The text with each RFC 5322 comment (nested, with quoted-pairs) made a space."""
    if "(" not in text:        # no comment: the loop below would copy every character
        return text
    out, depth, quoted, i = [], 0, False, 0
    while i < len(text):
        char = text[i]
        step = 2 if char == "\\" else 1
        if depth:
            depth += (char == "(") - (char == ")")
            if not depth:
                out.append(" ")
        elif char == "(" and not quoted:
            depth = 1
        else:
            out.append(text[i:i + step])
            quoted ^= char == '"'
        i += step
    return "".join(out)


def is_token(text: str) -> bool:
    return bool(text) and _NOT_TOKEN.search(text) is None


def _quoted_string(text: str, i: int) -> tuple[str, int]:
    """The content of the quoted-string opening at text[i], and the index after it."""
    out, i = [], i + 1
    while i < len(text) and text[i] != '"':
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i + 1


def _raw_params(text: str) -> list[tuple[str, str]]:
    """``; attribute=value`` pairs in order; a value is a quoted-string or runs to ``;``."""
    params, i, size = [], 0, len(text)
    while len(params) < MAX_PARAMS * 4:
        semi = text.find(";", i)
        if semi < 0:
            break
        nxt = text.find(";", semi + 1)
        stop = size if nxt < 0 else nxt
        eq = text.find("=", semi + 1, stop)
        if eq < 0:
            i = semi + 1
            continue
        attribute = without_comments(text[semi + 1:eq]).strip().lower()
        i = eq + 1
        while i < size and text[i] in " \t":
            i += 1
        if i < size and text[i] == '"':
            value, i = _quoted_string(text, i)
        else:
            value, i = without_comments(text[i:stop]).strip(), stop
        if is_token(attribute):
            params.append((attribute, value))
    return params


def _encoded(value: str) -> str:
    return quote(value.encode("utf-8", "surrogateescape"), safe=_ATTRIBUTE_CHARS)


def _joined(base: str, pieces: dict[int, tuple[bool, str]]) -> tuple[str, str] | None:
    """One parameter from its RFC 2231 §3 continuations (``name*0``, ``name*1*``...)."""
    ordered = []
    while len(ordered) in pieces:
        ordered.append(pieces[len(ordered)])
    if not ordered:
        return None
    if not any(extended for extended, _ in ordered):
        return base, "".join(value for _, value in ordered)
    first_extended, first = ordered[0]
    if first_extended and first.count("'") >= 2:
        charset, language, first = first.split("'", 2)
        prefix = f"{charset}'{language}'"
    else:
        prefix = "''"
    values = [first if first_extended else _encoded(first)]
    values += [value if extended else _encoded(value) for extended, value in ordered[1:]]
    return base + "*", prefix + "".join(values)


def merged(params: list[tuple[str, str]]) -> Params:
    """Parameters with RFC 2231 continuations joined; the first of each name kept."""
    pieces: dict[str, dict[int, tuple[bool, str]]] = {}
    order: list[tuple[str, str | None]] = []
    for attribute, value in params:
        section = _SECTION.match(attribute)
        if section is None:
            order.append((attribute, value))
            continue
        base = section.group(1)
        if base not in pieces:
            pieces[base] = {}
            order.append((base, None))
        pieces[base].setdefault(int(section.group(2)), (bool(section.group(3)), value))
    out: dict[str, str] = {}
    for name, value in order:
        pair = (name, value) if value is not None else _joined(name, pieces[name])
        if pair is not None and pair[0] not in out and len(out) < MAX_PARAMS:
            out[pair[0]] = pair[1]
    return tuple(out.items())


def content_type(value: str | None) -> tuple[str, str, Params] | None:
    """(type, subtype, params) lower-cased, or None when absent or unreadable."""
    if value is None:
        return None
    head, _, _ = value.partition(";")
    kind, slash, subtype = without_comments(head).partition("/")
    kind, subtype = kind.strip().lower(), subtype.strip().lower()
    if not (slash and is_token(kind) and is_token(subtype)):
        return None
    return kind, subtype, merged(_raw_params(value))


def disposition(value: str | None) -> tuple[str, Params] | None:
    """(disposition type lower-cased, params) of Content-Disposition (RFC 2183), or None."""
    if value is None:
        return None
    head, _, _ = value.partition(";")
    kind = without_comments(head).strip().lower()
    return (kind, merged(_raw_params(value))) if is_token(kind) else None


def languages(value: str | None) -> tuple[str, ...]:
    """The language tags of Content-Language (RFC 3282), comments dropped."""
    if value is None:
        return ()
    tags = (tag.strip() for tag in without_comments(value).split(","))
    return tuple(tag for tag in tags if tag)[:MAX_PARAMS]


def token(value: str | None) -> str | None:
    """A single-token field (Content-Transfer-Encoding) lower-cased, or None when empty."""
    if value is None:
        return None
    text = without_comments(value).strip().lower()
    return text or None


def param_value(params: Params, name: str) -> str | None:
    """A parameter's value, decoding RFC 2231 ``name*`` (preferred) to text."""
    values = dict(params)
    if name + "*" in values:
        return _decoded(values[name + "*"])
    return values.get(name)


def _decoded(value: str) -> str:
    charset, language, encoded = value.split("'", 2) if value.count("'") >= 2 else ("", "", value)
    data = unquote_to_bytes(encoded.encode("utf-8", "surrogateescape"))
    try:
        text = data.decode(codecs.lookup(charset or "us-ascii").name)
        text.encode("utf-8")        # lone surrogates (utf-7, unicode_escape) are not text
        return text
    except (LookupError, ValueError):      # unknown charset, bad bytes, NUL in the name
        return data.decode("utf-8", "replace")
