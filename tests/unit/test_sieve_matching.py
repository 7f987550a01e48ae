"""Sieve's match types and comparators (sieve/matching.py), as RFC 5228 §2.7 and RFC 4790
define them: ``:is``, ``:contains``, ``:matches`` with wildcards and escapes, under
``i;ascii-casemap`` and ``i;octet``; and the glob matcher's bounded cost on hostile
patterns.
"""

from __future__ import annotations

import random
import re
import time

import pytest

from mailstack.sieve.matching import Glob, ascii_fold, matcher


@pytest.mark.parametrize("pattern, value, expected", [
    ("*", "", True),
    ("*", "anything at all", True),
    ("?", "", False),
    ("?", "x", True),
    ("?*", "", False),                     # RFC 5228 §5.7: "?*" is "not empty"
    ("?*", " ", True),
    ("frob*", "frobnitzm", True),
    ("*nitzm", "frobnitzm", True),
    ("*nit*", "frobnitzm", True),
    ("f?o?n*", "frobnitzm", True),
    ("*x*", "frobnitzm", False),
    ("frob", "frobnitzm", False),          # the whole value must match
    ("a*b", "ab", True),
    ("a*b", "axxbc", False),
    ("a*a", "a", False),                   # the head and tail may not overlap
    ("ab*ba", "aba", False),
    ("ab*ba", "abba", True),
    ("*a?b*", "ab", False),
    ("*a?b*", "xaxbx", True),
    ("*?a?*", "xxaxx", True),
    ("?*?", "a", False),
    ("*@example.com", "joe@example.com", True),
    ("*@example.com", "joe@example.com.evil", False),
    ("MAKE*MONEY*FAST", "MAKE MONEY FAST", True),
    ("*money*money*", "money", False),
])
def test_matches_wildcards(pattern, value, expected):
    assert Glob(pattern).matches(value) is expected


@pytest.mark.parametrize("pattern, value, expected", [
    ("a\\*c", "a*c", True),                # "\\*" in a script string: a literal star
    ("a\\*c", "abc", False),
    ("a\\?c", "a?c", True),
    ("a\\?c", "abc", False),
    ("\\\\", "\\", True),                  # an escaped backslash
    ("*\\**", "ab*cd", True),
    ("*\\**", "abcd", False),
    ("a\\b", "ab", True),                  # any escaped character is itself
])
def test_matches_escapes(pattern, value, expected):
    assert Glob(pattern).matches(value) is expected


def _reference(pattern: str, value: str) -> bool:
    """The same glob as a regular expression: slow on hostile input, right on small."""
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.fullmatch("".join(out), value, re.S) is not None


def test_matches_agrees_with_a_regular_expression_on_random_cases():
    chance = random.Random(5228)
    for _ in range(5000):
        pattern = "".join(chance.choice("ab*?\\") for _ in range(chance.randint(0, 8)))
        value = "".join(chance.choice("ab*?\\") for _ in range(chance.randint(0, 10)))
        assert Glob(pattern).matches(value) is _reference(pattern, value), (pattern, value)


def test_contains_empty_key_is_in_every_value_and_is_empty_only_in_empty():
    assert matcher(":contains", "i;ascii-casemap", [""])("") is True
    assert matcher(":contains", "i;ascii-casemap", [""])("anything") is True
    assert matcher(":is", "i;ascii-casemap", [""])("") is True
    assert matcher(":is", "i;ascii-casemap", [""])("x") is False


def test_contains_substrings_as_rfc_5228_says():
    contains = matcher(":contains", "i;octet", ["frob", "nit"])
    assert contains("frobnitzm") and not matcher(":contains", "i;octet", ["fbm"])("frobnitzm")


def test_any_key_of_a_list_matches():
    assert matcher(":is", "i;octet", ["a", "b", "c"])("b")
    assert not matcher(":is", "i;octet", ["a", "b", "c"])("d")
    assert matcher(":matches", "i;octet", ["x*", "*b"])("ab")


def test_ascii_casemap_folds_ascii_only():
    assert ascii_fold("MAKE Money") == "make money"
    assert ascii_fold("CAFÉ Ä") == "cafÉ Ä"          # RFC 4790 §9.2: only A-Z
    assert matcher(":is", "i;ascii-casemap", ["Make Money Fast"])("MAKE MONEY FAST")
    assert not matcher(":is", "i;ascii-casemap", ["café"])("CAFÉ")
    assert matcher(":matches", "i;ascii-casemap", ["*MONEY*"])("you can make money")


def test_octet_is_case_sensitive():
    assert not matcher(":contains", "i;octet", ["MAKE MONEY FAST"])("You can Make Money Fast")
    assert matcher(":contains", "i;octet", ["MAKE MONEY FAST"])("You can MAKE MONEY FAST")
    assert not matcher(":matches", "i;octet", ["*FAST"])("fast")


def test_question_mark_is_one_character_of_text():
    assert matcher(":matches", "i;ascii-casemap", ["caf?"])("café")


def test_unknown_match_type_or_comparator_is_refused():
    with pytest.raises(ValueError):
        matcher(":regex", "i;octet", ["x"])
    with pytest.raises(ValueError):
        matcher(":is", "i;unicode-casemap", ["x"])


def test_hostile_globs_are_linear_not_exponential():
    value = "a" * 20_000
    started = time.perf_counter()
    for pattern in ("*a*a*a*a*a*a*a*a*a*a*a*a*b", "*?a?a?a?a?a?a?b*", "a*" * 200 + "b"):
        assert Glob(pattern).matches(value) is False
    assert time.perf_counter() - started < 1.0
