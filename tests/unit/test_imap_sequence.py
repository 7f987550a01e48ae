"""Sequence sets: parsing, ``*``, and resolution against sorted sequence numbers or UIDs."""

from __future__ import annotations

import time

import pytest

from mailstack.protocols.imap_sequence import MAX_RANGES, SequenceSet
from mailstack.protocols.imap_tokens import ParseError
from mailstack.store.search_criteria import Uids


def test_ranges_are_normalised_and_star_kept_as_none():
    parsed = SequenceSet.parse(b"1,3:5,7:*,9:8,*:2,*")
    assert parsed.ranges == ((1, 1), (3, 5), (7, None), (8, 9), (2, None), (None, None))
    assert parsed.has_star and not SequenceSet.parse(b"1:2").has_star


@pytest.mark.parametrize("text", [b"", b"0", b"0:5", b"1:0", b"01", b"1,", b",1", b"1::2",
                                  b"1:2:3", b"a", b"1 2", b"4294967296", b"12345678901", b"-1",
                                  b"$", b"1,,2"])
def test_malformed_sets_are_bad(text):
    with pytest.raises(ParseError):
        SequenceSet.parse(text)


def test_largest_number_is_allowed():
    assert SequenceSet.parse(b"4294967295").ranges == ((4294967295, 4294967295),)


def test_resolve_sequence_numbers_with_star_as_last():
    count = 10
    chosen = SequenceSet.parse(b"2,4:5,9:*").resolve(range(1, count + 1), count)
    assert chosen == [2, 4, 5, 9, 10]
    assert SequenceSet.parse(b"*:8").resolve(range(1, 11), 10) == [8, 9, 10]


def test_resolve_uids_n_star_above_last_selects_last():
    uids = [3, 7, 20, 21]
    assert SequenceSet.parse(b"100:*").resolve(uids, uids[-1]) == [21]    # RFC 3501 §6.4.8
    assert SequenceSet.parse(b"5:*").resolve(uids, uids[-1]) == [7, 20, 21]
    assert SequenceSet.parse(b"1:4294967295").resolve(uids, 21) == uids


def test_resolve_merges_overlaps_and_answers_each_value_once_in_order():
    uids = [1, 2, 3, 4, 5, 6]
    assert SequenceSet.parse(b"5,1:3,2:4,6,6").resolve(uids, 6) == [1, 2, 3, 4, 5, 6]


def test_resolve_on_an_empty_mailbox_is_empty():
    assert SequenceSet.parse(b"1:*").resolve([], 0) == []


def test_contains_uses_the_same_rules():
    seq = SequenceSet.parse(b"1:3,10:*")
    assert seq.contains(2, 15) and seq.contains(15, 15) and not seq.contains(5, 15)
    assert seq.contains(8, 8) and not seq.contains(16, 15)


def test_ranges_fit_the_store_uids_node():
    assert Uids(SequenceSet.parse(b"2:*").ranges) == Uids(((2, None),))


def test_too_many_ranges_is_bad():
    text = b",".join(b"%d" % (i * 2 + 1) for i in range(MAX_RANGES + 1))
    with pytest.raises(ParseError, match="Too many"):
        SequenceSet.parse(text)


def test_1730_ranges_parse_and_resolve_fast():
    """Twisted's parseIdList took 0.78 s for this (TWISTED-NOTES)."""
    text = b",".join(b"%d:%d" % (i * 3 + 1, i * 3 + 2) for i in range(1730))
    started = time.perf_counter()
    parsed = SequenceSet.parse(text)
    chosen = parsed.resolve(list(range(1, 6000)), 5999)
    elapsed = time.perf_counter() - started
    assert len(parsed.ranges) == 1730 and len(chosen) == 3460
    assert elapsed < 0.1
