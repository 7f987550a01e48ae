"""ManageSieve's words: a command's arguments read, a reply's strings written (RFC 5804 §4).

Why apart from the session: the framing (``imap_framing``, shared with IMAP: the same
literal markers end a line) hands over one command as bytes with its literals inline;
reading it into a name and typed arguments, and writing strings back as quoted strings or
literals, is pure and tested alone.

Grammar (RFC 5804 §4): ``command = name *(SP argument) CRLF``; an argument is a number, a
quoted string (``\\`` escapes ``"`` and ``\\`` only), or a literal ``{n+}`` CRLF n octets
(the client's; ``{n}`` is read the same way, as Dovecot and Cyrus do).  Strings are
UTF-8 (RFC 5804 §1.6, §4).

Security: reads only what the framing already bounded; every malformed input is a
``GrammarError`` (answered ``NO``), never an exception that escapes.
"""

from __future__ import annotations

import re

_ATOM = re.compile(rb"[A-Za-z]+")
_NUMBER = re.compile(rb"[0-9]{1,10}")
_LITERAL = re.compile(rb"\{([0-9]{1,10})\+?\}\r\n")
_QUOTED = re.compile(rb'"((?:[^"\\\r\n]|\\["\\])*)"')
_QUOTABLE = re.compile(r'[^\r\n\x00]{0,1024}')


class GrammarError(ValueError):
    """Not a well-formed ManageSieve command."""


class Number(int):
    """A number argument (HAVESPACE's size), told apart from a string."""


def read_command(raw: bytes) -> tuple[str, list]:
    """(NAME in upper case, [str | Number, ...]) of one framed command."""
    found = _ATOM.match(raw)
    if found is None:
        raise GrammarError("expected a command name")
    name, at, args = found.group().decode("ascii").upper(), found.end(), []
    while at < len(raw):
        if raw[at:at + 1] != b" ":
            raise GrammarError("expected a space between arguments")
        value, at = _argument(raw, at + 1)
        args.append(value)
    return name, args


def read_string(raw: bytes) -> str:
    """One string alone on its line (a SASL response, RFC 5804 §2.1)."""
    value, at = _argument(raw, 0)
    if at != len(raw) or not isinstance(value, str):
        raise GrammarError("expected a string")
    return value


def _argument(raw: bytes, at: int):
    quoted = _QUOTED.match(raw, at)
    if quoted is not None:
        text = re.sub(rb"\\(.)", rb"\1", quoted.group(1))
        return _text(text), quoted.end()
    literal = _LITERAL.match(raw, at)
    if literal is not None:
        start = literal.end()
        end = start + int(literal.group(1))
        if end > len(raw):
            raise GrammarError("literal shorter than announced")
        return _text(raw[start:end]), end
    number = _NUMBER.match(raw, at)
    if number is not None:
        return Number(int(number.group())), number.end()
    raise GrammarError("expected a string or a number")


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise GrammarError("strings must be UTF-8") from None


# --- replies ------------------------------------------------------------------------------

def string(value: str) -> bytes:
    """A quoted string (``"`` and ``\\`` escaped) where one may be used, else a literal
    (RFC 5804 §4: ``{n}``)."""
    if _QUOTABLE.fullmatch(value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return b'"' + escaped.encode("utf-8") + b'"'
    data = value.encode("utf-8")
    return b"{%d}\r\n" % len(data) + data


def response(status: str, code: str | bytes | None = None, text: str | None = None) -> bytes:
    """``OK``/``NO``/``BYE``, an optional response code and an optional human text
    (RFC 5804 §1.3); the line ends in CRLF."""
    line = status.encode("ascii")
    if code:
        line += b" (" + (code.encode("utf-8") if isinstance(code, str) else code) + b")"
    if text:
        line += b" " + string(text)
    return line + b"\r\n"
