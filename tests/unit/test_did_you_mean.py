"""Did you mean: the right suggestion for each common kind of typo, and never one in an
SMTP reply (a suggestion names an existing address: a harvester's prize)."""

from __future__ import annotations

import ast
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mailstack import replies
from mailstack.delivery import bounce
from mailstack.desk import did_you_mean
from mailstack.desk.did_you_mean import distance, likely_domain, similar_addresses

EXISTING = ["alice@example.test", "bob.smith@example.test", "carol_jones@example.test",
            "dave@example.test", "info@example.test", "sales@example.test", "support@example.test",
            "john.doe@example.test", "johnny@example.test", "x@example.test",
            "alice@other.test"]

ADDRESS_CASES = [
    ("alcie@example.test", ["alice@example.test"]),                 # swapped letters
    ("alise@example.test", ["alice@example.test"]),                 # one wrong letter
    ("alic@example.test", ["alice@example.test"]),                  # one dropped
    ("aliice@example.test", ["alice@example.test"]),                # one added
    ("Alice@example.test", []),                                     # the same address
    ("bobsmith@example.test", ["bob.smith@example.test"]),          # dot dropped
    ("bob.smith.@example.test", ["bob.smith@example.test"]),        # dot added
    ("bob_smith@example.test", ["bob.smith@example.test"]),         # separator swapped
    ("bob-smith@example.test", ["bob.smith@example.test"]),
    ("bob.smiht@example.test", ["bob.smith@example.test"]),         # swapped at the end
    ("carol.jones@example.test", ["carol_jones@example.test"]),
    ("caroljones@example.test", ["carol_jones@example.test"]),
    ("alice+news@example.test", ["alice@example.test"]),            # a +tag
    ("daev@example.test", ["dave@example.test"]),
    ("dve@example.test", ["dave@example.test"]),
    ("suport@example.test", ["support@example.test"]),
    ("supprot@example.test", ["support@example.test"]),
    ("sale@example.test", ["sales@example.test"]),
    ("inf0@example.test", ["info@example.test"]),                   # digit for letter
    ("jon.doe@example.test", ["john.doe@example.test"]),
    ("johndoe@example.test", ["john.doe@example.test"]),
    ("jonny@example.test", ["johnny@example.test"]),
    ("zzzzzz@example.test", []),                                    # nothing like it
    ("alice@unknown.test", []),                                     # another domain
    ("y@example.test", []),                                         # too short to guess
    ("ALCIE@EXAMPLE.TEST", ["alice@example.test"]),                 # case
]

DOMAIN_CASES = [
    ("gmial.com", "gmail.com"), ("gmal.com", "gmail.com"), ("gmaill.com", "gmail.com"),
    ("gmail.con", "gmail.com"), ("gmailcom", "gmail.com"), ("gnail.com", "gmail.com"),
    ("yahooo.co.jp", "yahoo.co.jp"), ("yaho.co.jp", "yahoo.co.jp"), ("yahoo.co.pj", "yahoo.co.jp"),
    ("yahoo.cm", "yahoo.com"), ("hotmial.com", "hotmail.com"), ("hotmai.com", "hotmail.com"),
    ("hotmail.co", "hotmail.com"), ("outlok.com", "outlook.com"), ("outllook.com", "outlook.com"),
    ("otulook.com", "outlook.com"), ("icloud.co", "icloud.com"), ("iclod.com", "icloud.com"),
    ("docomo.ne.pj", "docomo.ne.jp"), ("ezweb.ne.ip", "ezweb.ne.jp"), ("googlemial.com", "googlemail.com"),
    ("protonmial.com", "protonmail.com"), ("GMIAL.COM", "gmail.com"),
    ("gmail.com", None), ("mail.com", None), ("example.test", None), ("sender.test", None),
    ("ma.com", None),                                               # me.com or mac.com: unsure
]


@pytest.mark.parametrize("tried, expected", ADDRESS_CASES)
def test_similar_addresses(tried, expected):
    assert similar_addresses(tried, EXISTING) == expected


@pytest.mark.parametrize("typed, meant", DOMAIN_CASES)
def test_likely_domain(typed, meant):
    assert likely_domain(typed) == meant


def test_there_are_at_least_thirty_typo_cases():
    assert len(ADDRESS_CASES) + len(DOMAIN_CASES) >= 30 and len(DOMAIN_CASES) >= 20


def test_distance_counts_a_swap_as_one_edit():
    assert distance("abcd", "abdc") == 1 and distance("", "abc") == 3 and distance("kitten", "sitting") == 3


def _reply_texts():
    for name, value in vars(replies).items():
        if isinstance(value, (replies.Reply, replies.CodedReply)):
            yield name, value.text


@pytest.mark.parametrize("name, text", list(_reply_texts()))
def test_no_smtp_reply_suggests_an_address(name, text):
    lowered = text.lower()
    for word in ("did you mean", "suggest", "closest", "perhaps", "similar"):
        assert word not in lowered, f"replies.{name} suggests: {text!r}"
    filled = text.format_map({k: "alcie@example.test" for k in ("address", "ip", "listing", "reason",
                                                                 "domain", "policy", "host", "url",
                                                                 "user", "hops", "id")})
    assert "alice@" not in filled


# The one door: the whitehole page runs the explainer on a pasted bounce (issue 21, item 3)
# through ``desk.whitehole``, which hands the page kinds of refusal and advice only; its
# suggestions go to the stored findings (tests/unit/test_whitehole.py checks the page).
PAGE_DOOR = ("protocols/whitehole_page.py", "mailstack.desk")


def test_no_code_that_answers_a_client_can_reach_the_suggestions():
    root = Path(did_you_mean.__file__).parents[1]
    for path in [root / "replies.py", *(root / "protocols").rglob("*.py"),
                 *(root / "policy").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if path.relative_to(root).as_posix() == PAGE_DOOR[0] and names == [PAGE_DOOR[1]]:
                assert [a.name for a in node.names] == ["whitehole"], path
                continue
            assert not any("desk" in n or "did_you_mean" in n for n in names), path


AT = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
ORIGINAL = b"From: carol@example.test\r\nTo: friend@gmial.com\r\nSubject: hi\r\n\r\nbody\r\n"


def test_our_bounce_names_the_domain_probably_meant():
    dsn = bounce.build("mail.example.test", "carol@example.test",
                       [("friend@gmial.com", "5.1.2", "Host or domain name not found"),
                        ("pal@yahooo.co.jp", "5.1.2", "Host or domain name not found"),
                        ("other@elsewhere.test", "5.1.1", "550 5.1.1 User unknown")],
                       ORIGINAL, AT).decode()
    human = dsn.split("Content-Type: message/delivery-status")[0]
    assert "Did you mean <friend@gmail.com>? The domain looks mistyped." in human
    assert "Did you mean <pal@yahoo.co.jp>?" in human
    assert human.count("Did you mean") == 2
    machine = dsn.split("Content-Type: message/delivery-status")[1]
    assert "Did you mean" not in machine
