"""IMAP SEARCH (RFC 3501 §6.4.4) evaluated over a mailbox snapshot.

Why ours: Twisted's fallback loads every message through FETCH and is quadratic (#5849).
Flag, UID, size and date keys need only the message list the mailbox already holds; the
bodies are read (in one query) only when a header or text key asks for them.
"""

from __future__ import annotations

import email
import email.policy
from datetime import datetime, timedelta, timezone

from twisted.mail.imap4 import parseIdList

FLAG_KEYS = {"ANSWERED": ("\\Answered", True), "UNANSWERED": ("\\Answered", False),
             "DELETED": ("\\Deleted", True), "UNDELETED": ("\\Deleted", False),
             "DRAFT": ("\\Draft", True), "UNDRAFT": ("\\Draft", False),
             "FLAGGED": ("\\Flagged", True), "UNFLAGGED": ("\\Flagged", False),
             "SEEN": ("\\Seen", True), "UNSEEN": ("\\Seen", False)}
HEADER_KEYS = {"FROM", "TO", "CC", "BCC", "SUBJECT"}
BODY_KEYS = HEADER_KEYS | {"HEADER", "BODY", "TEXT", "SENTBEFORE", "SENTON", "SENTSINCE"}
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _text(token) -> str:
    return token.decode("utf-8", "replace") if isinstance(token, bytes) else str(token)


def _flatten(query):
    for token in query:
        if isinstance(token, list):
            yield from _flatten(token)
        else:
            yield _text(token).upper()


def needs_body(query) -> bool:
    return any(t in BODY_KEYS for t in _flatten(query))


def _date(text: str) -> datetime:
    day, month, year = text.split("-")
    return datetime(int(year), MONTHS.index(month.upper()) + 1, int(day), tzinfo=timezone.utc)


class Matcher:
    def __init__(self, infos, bodies):
        self.infos, self.bodies = infos, bodies
        self._parsed = {}

    def matching(self, query) -> list[int]:
        return [seq for seq, m in enumerate(self.infos, 1) if self._all(list(query), seq, m)]

    def _all(self, tokens, seq, m) -> bool:
        while tokens:
            if not self._one(tokens, seq, m):
                return False
        return True

    def _one(self, tokens, seq, m) -> bool:
        token = tokens.pop(0)
        if isinstance(token, list):
            return self._all(list(token), seq, m)
        key = _text(token).upper()
        if key == "ALL":
            return True
        if key in FLAG_KEYS:
            flag, present = FLAG_KEYS[key]
            return (flag in m.flags) == present
        if key in ("NEW", "RECENT"):
            return False
        if key == "OLD":
            return True
        if key in ("KEYWORD", "UNKEYWORD"):
            return (_text(tokens.pop(0)) in m.flags) == (key == "KEYWORD")
        if key == "NOT":
            return not self._one(tokens, seq, m)
        if key == "OR":
            left, right = self._one(tokens, seq, m), self._one(tokens, seq, m)
            return left or right
        if key == "UID":
            return self._in_set(tokens.pop(0), m.uid, self.infos[-1].uid)
        if key in ("LARGER", "SMALLER"):
            size = int(_text(tokens.pop(0)))
            return m.size > size if key == "LARGER" else m.size < size
        if key in ("BEFORE", "ON", "SINCE"):
            return self._compare_date(key, _date(_text(tokens.pop(0))), m.internal_date)
        if key in ("SENTBEFORE", "SENTON", "SENTSINCE"):
            return self._sent(key[4:], _date(_text(tokens.pop(0))), m)
        if key in HEADER_KEYS:
            return self._header(key, _text(tokens.pop(0)), m)
        if key == "HEADER":
            name, value = _text(tokens.pop(0)), _text(tokens.pop(0))
            return self._header(name, value, m)
        if key in ("BODY", "TEXT"):
            needle = _text(tokens.pop(0)).lower().encode()
            raw = self.bodies.get(m.id, b"")
            haystack = raw if key == "TEXT" else raw.partition(b"\r\n\r\n")[2]
            return needle in haystack.lower()
        if key[:1].isdigit() or key[:1] == "*":
            return self._in_set(key, seq, len(self.infos))
        raise ValueError(f"unsupported search key {key}")

    @staticmethod
    def _in_set(token, value, last) -> bool:
        ids = parseIdList(token if isinstance(token, bytes) else _text(token).encode())
        for low, high in ids.ranges:
            low = last if low is None else low
            high = last if high is None else high
            if min(low, high) <= value <= max(low, high):
                return True
        return False

    @staticmethod
    def _compare_date(key, day: datetime, moment: datetime) -> bool:
        start, end = day, day + timedelta(days=1)
        if key == "BEFORE":
            return moment < start
        if key == "ON":
            return start <= moment < end
        return moment >= start

    def _message(self, m):
        if m.id not in self._parsed:
            self._parsed[m.id] = email.message_from_bytes(self.bodies.get(m.id, b""),
                                                          policy=email.policy.compat32)
        return self._parsed[m.id]

    def _header(self, name, value, m) -> bool:
        found = self._message(m).get_all(name) or []
        return any(value.lower() in str(v).lower() for v in found)

    def _sent(self, key, day, m) -> bool:
        from email.utils import parsedate_to_datetime
        try:
            sent = parsedate_to_datetime(self._message(m).get("Date", ""))
        except (TypeError, ValueError):
            return False
        return self._compare_date(key, day, sent.astimezone(timezone.utc))


class BadCharset(ValueError):
    """A SEARCH CHARSET other than US-ASCII or UTF-8 (NO [BADCHARSET])."""
