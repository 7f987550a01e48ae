"""Address header fields (From, To, Cc...) as IMAP ENVELOPE address structures.

Why our own parser: ENVELOPE needs each address split into (name, route, mailbox, host)
exactly as written -- encoded words left encoded, quoted local parts left quoted, groups
kept as group markers, source routes kept -- and it must accept any garbage without an
exception.  The standard library's parser decodes and normalises, which is the wrong job.

Choices: a comment stands in for a missing display name (``user@host (Real Name)``), as
Dovecot answers and imaptest expects; other comments are dropped.  An address without a
domain has host NIL (RFC 3501 reads a NIL host as a group start: clients may show such an
address oddly, but it says what the message says).  ``<>`` alone yields no address.

Standards: RFC 5322 §3.4, §4.4 (obsolete routes and CFWS); RFC 3501 §7.4.2 (ENVELOPE).
"""

from __future__ import annotations

import re
from typing import NamedTuple

Address = tuple[bytes | None, bytes | None, bytes | None, bytes | None]
GROUP_END: Address = (None, None, None, None)

_TOKEN = re.compile(rb"""
    (?P<space>[ \t\r\n]+)
  | (?P<atom>[^ \t\r\n()<>\[\]:;@,."\\]+)
  | (?P<quoted>"[^"\\]*(?:\\.[^"\\]*)*"?)
  | (?P<literal>\[[^\]\\]*(?:\\.[^\]\\]*)*\]?)
  | (?P<comment>\([^()\\]*(?:\\.[^()\\]*)*\)|\()
  | (?P<special>[<>:;@,.])
  | (?P<other>.)
""", re.X | re.S)
_COMMENT_CHAR = re.compile(rb"[()\\]")
_QUOTED_PAIR = re.compile(rb"\\(.)", re.S)
_WORDS = ("atom", "quoted", "literal", "other")


class _Token(NamedTuple):
    kind: str       # "atom", "quoted", "literal", "comment", "other", or the special itself
    raw: bytes      # as written; a comment's content without its outer parentheses
    spaced: bool    # whitespace or a comment came before it


def _comment_end(value: bytes, start: int) -> int:
    """The index just after the comment opening at ``start`` (nested, quoted-pairs)."""
    depth, pos = 0, start
    while (found := _COMMENT_CHAR.search(value, pos)) is not None:
        char, pos = found.group(), found.end()
        if char == b"\\":
            pos += 1
        elif char == b"(":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos
    return len(value)


def _tokens(value: bytes) -> list[_Token]:
    tokens, spaced, pos = [], False, 0
    while pos < len(value):
        for found in _TOKEN.finditer(value, pos):
            kind, text = found.lastgroup, found.group()
            if kind == "space":
                spaced = True
                continue
            if kind == "comment" and not text.endswith(b")"):
                pos = _comment_end(value, found.start())     # nested or unterminated
                text = value[found.start():pos]
                tokens.append(_Token("comment", text[1:-1] if text.endswith(b")") else text[1:],
                                     spaced))
                spaced = True
                break                       # tokenise again after the whole comment
            if kind == "comment":
                tokens.append(_Token("comment", text[1:-1], spaced))
            else:
                tokens.append(_Token(text.decode("latin-1") if kind == "special" else kind,
                                     text, spaced))
            spaced = kind == "comment"
        else:
            break
    return tokens


def _word_text(token: _Token) -> bytes:
    if token.kind != "quoted":
        return token.raw
    content = token.raw[1:-1] if len(token.raw) > 1 and token.raw.endswith(b'"') else token.raw[1:]
    return _QUOTED_PAIR.sub(rb"\1", content)


def _phrase(tokens: list[_Token]) -> bytes | None:
    """A display name: words joined by single spaces, quoted-strings unquoted."""
    words: list[bytes] = []
    for token in tokens:
        if token.kind != "comment":
            if words and token.spaced:
                words.append(b" ")
            words.append(_word_text(token))
    return b"".join(words).strip() or None


def _local_part(tokens: list[_Token]) -> bytes:
    """The local part as written (quotes kept); obsolete spaces around dots dropped."""
    words: list[bytes] = []
    previous = None
    for token in tokens:
        if words and token.spaced and token.kind in _WORDS and previous in _WORDS:
            words.append(b" ")
        words.append(token.raw)
        previous = token.kind
    return b"".join(words)


def _addr_spec(tokens: list[_Token]) -> tuple[bytes, bytes | None]:
    kinds = [token.kind for token in tokens]
    if "@" not in kinds:
        return _local_part(tokens), None
    at = kinds.index("@")
    domain = b"".join(token.raw for token in tokens[at + 1:])
    return _local_part(tokens[:at]), domain or None


def _route(tokens: list[_Token]) -> tuple[bytes | None, list[_Token]]:
    """The obsolete source route ``@a,@b:`` before an addr-spec, and what follows it."""
    kinds = [token.kind for token in tokens]
    if not kinds or kinds[0] != "@" or ":" not in kinds:
        return None, tokens
    colon = kinds.index(":")
    return b"".join(token.raw for token in tokens[:colon]), tokens[colon + 1:]


def _mailbox(tokens: list[_Token]) -> Address | None:
    words = [token for token in tokens if token.kind != "comment"]
    comments = [token for token in tokens if token.kind == "comment"]
    kinds = [token.kind for token in words]
    name = adl = None
    if "<" in kinds:
        opening = kinds.index("<")
        name = _phrase(words[:opening])
        inner = words[opening + 1:]
        closing = [token.kind for token in inner]
        inner = inner[:closing.index(">")] if ">" in closing else inner
        adl, inner = _route(inner)
        words = inner
    mailbox, host = _addr_spec(words)
    if name is None and comments:
        name = comments[-1].raw.strip() or None
    if not mailbox and host is None:
        return None
    return name, adl, mailbox, host


def _unit_end(tokens: list[_Token], start: int, in_group: bool) -> tuple[int, bool]:
    """Where the address at ``start`` ends, and whether it is instead a group's start."""
    depth, addressed = 0, False
    for index in range(start, len(tokens)):
        kind = tokens[index].kind
        if kind == "<":
            depth, addressed = depth + 1, True
        elif kind == ">":
            depth = max(0, depth - 1)
        elif kind == "@":
            addressed = True
        elif depth == 0 and kind in (",", ";"):
            return index, False
        elif depth == 0 and kind == ":" and not in_group and not addressed:
            return index, True
    return len(tokens), False


def parse_addresses(value: bytes, groups: bool = True) -> tuple[Address, ...]:
    """The addresses of an address-list, with group start and end markers (without them
    when ``groups`` is false: a group's name is no address, Sieve's address test must
    never match it, RFC 5228 §5.1)."""
    tokens = _tokens(value)
    out: list[Address] = []
    index, in_group = 0, False
    while index < len(tokens):
        kind = tokens[index].kind
        if kind in (",", ";"):
            if kind == ";" and in_group:
                if groups:
                    out.append(GROUP_END)
                in_group = False
            index += 1
            continue
        end, group_start = _unit_end(tokens, index, in_group)
        if group_start:
            if groups:
                out.append((None, None, _phrase(tokens[index:end]) or b"", None))
            in_group, index = True, end + 1
            continue
        address = _mailbox(tokens[index:end])
        if address is not None:
            out.append(address)
        index = end
    if in_group and groups:
        out.append(GROUP_END)
    return tuple(out)
