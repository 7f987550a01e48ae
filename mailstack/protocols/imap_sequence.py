"""IMAP sequence sets (``1,3:5,7:*``): parsed once, resolved against a sorted list.

Why ours: Twisted's ``parseIdList`` is roughly quadratic in the number of ranges and runs
on the reactor (1,730 ranges took 0.78 s, TWISTED-NOTES), and its ``MessageSet`` needs
``last`` set before ``*`` can be iterated.  Here parsing is two regular-expression scans
and one pass over the ranges; resolving merges the ranges once and bisects the sorted
values, O(ranges log ranges + ranges log values + matches).

``*`` is kept as ``None`` until the caller knows the mailbox's last sequence number or
UID; ranges are normalised so that ``low <= high`` with ``None`` counting as the largest.
That is also the convention of ``store.search_criteria.Uids``: ``Uids(s.ranges)`` works.

Standards: RFC 3501 §9 (sequence-set, seq-number = nz-number / "*"), RFC 3501 §6.4.8
(``n:*`` with n above the last UID still selects the last message), RFC 9051 §9.
Security: at most ``MAX_RANGES`` ranges and 10-digit numbers, so a hostile set costs
linear time and bounded memory.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from mailstack.protocols.imap_tokens import MAX_NUMBER, ParseError

MAX_RANGES = 100_000
_NUMBER = rb"(?:[1-9][0-9]{0,9}|\*)"
_WHOLE = re.compile(_NUMBER + rb"(?::" + _NUMBER + rb")?(?:," + _NUMBER
                    + rb"(?::" + _NUMBER + rb")?)*+")
_RANGE = re.compile(rb"([0-9]+|\*)(?::([0-9]+|\*))?")
SET_CHARS = re.compile(rb"[0-9:,*]+")


def _value(text: bytes) -> int | None:
    if text == b"*":
        return None
    value = int(text)
    if value > MAX_NUMBER:
        raise ParseError("Number too large in sequence set")
    return value


def _normalised(low: int | None, high: int | None) -> tuple[int | None, int | None]:
    if low is None:
        return high, None
    if high is None or low <= high:
        return low, high
    return high, low


@dataclass(frozen=True)
class SequenceSet:
    """``ranges``: ((low, high), ...) as sent, each with low <= high; None is ``*``."""

    ranges: tuple[tuple[int | None, int | None], ...]
    _merged_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, text: bytes) -> SequenceSet:
        """A whole sequence set; ParseError if malformed, zero, too large or too long."""
        if not _WHOLE.fullmatch(text):
            raise ParseError("Bad sequence set")
        pairs = _RANGE.findall(text)
        if len(pairs) > MAX_RANGES:
            raise ParseError("Too many ranges in sequence set")
        return cls(tuple(_normalised(_value(low), _value(high or low))
                         for low, high in pairs))

    @property
    def has_star(self) -> bool:
        return any(high is None for _, high in self.ranges)

    def merged(self, last: int) -> list[tuple[int, int]]:
        """The ranges with ``*`` = ``last``, sorted and merged (touching ranges join)."""
        if last not in self._merged_cache:
            if len(self._merged_cache) > 4:
                self._merged_cache.clear()
            self._merged_cache[last] = _merge(self.ranges, last)
        return self._merged_cache[last]

    def resolve(self, values, last: int) -> list[int]:
        """Which of ``values`` (ascending; a list or a ``range``) the set selects.

        For sequence numbers pass ``range(1, count + 1)`` and ``count``; for UIDs the
        sorted UIDs and the highest UID (``*``; ``n:*`` with n > last selects ``last``).
        """
        chosen: list[int] = []
        start = 0
        for low, high in self.merged(last):
            start = bisect_left(values, low, start)
            stop = bisect_right(values, high, start)
            chosen.extend(values[start:stop])
            start = stop
        return chosen

    def contains(self, value: int, last: int) -> bool:
        ranges = self.merged(last)
        at = bisect_right(ranges, (value, float("inf"))) - 1
        return at >= 0 and ranges[at][0] <= value <= ranges[at][1]


def _merge(ranges, last: int) -> list[tuple[int, int]]:
    concrete = sorted(_normalised(last if low is None else low, last if high is None else high)
                      for low, high in ranges)
    merged: list[tuple[int, int]] = []
    for low, high in concrete:
        if merged and low <= merged[-1][1] + 1:
            if high > merged[-1][1]:
                merged[-1] = (merged[-1][0], high)
        else:
            merged.append((low, high))
    return merged
