"""A customer's script is hostile input, and an error must never lose mail
(sieve/interpreter.py): nesting, redirect storms, enormous elsif chains and expensive
comparisons are bounded, failures end in "kept in INBOX" with a reason, nothing raises,
and compiled scripts are cached per version.
"""

from __future__ import annotations

import time

from mailstack.sieve.actions import FileInto, Keep, Redirect
from mailstack.sieve.interpreter import MAX_DEPTH, ScriptCache, compile_script
from mailstack.sieve.message_view import MessageView
from tests.support.sieve import HEADER, message, parse, run, script

REQUIRE = 'require ["fileinto", "body", "imap4flags"];\n'


def test_fifteen_nested_blocks_and_test_lists_run():     # RFC 5228 §2.10.7's minimum
    text = REQUIRE + 'if true {\n' * 15 + 'fileinto "deep";\n' + '}\n' * 15
    assert run(text).actions == (FileInto("deep"),)
    test = "allof(" * 15 + "true" + ")" * 15
    assert run(REQUIRE + f'if {test} {{ fileinto "deep"; }}').actions == (FileInto("deep"),)
    both = REQUIRE + 'if true {\n' * 14 + f'if {test} {{ fileinto "deep"; }}' + '}\n' * 14
    assert run(both).actions == (FileInto("deep"),)


def test_hostile_deep_nesting_is_refused_and_the_mail_kept():
    for depth in (MAX_DEPTH + 1, 2000):
        for text in ('if true {\n' * depth + 'discard;\n' + '}\n' * depth,
                     'if ' + 'not ' * depth + 'false { discard; }',
                     'if ' + 'anyof(' * depth + 'true' + ')' * depth + ' { discard; }'):
            compiled = script(text)
            assert "nested" in compiled.error
            assert compiled.run(message()) .actions == (Keep(),)


def test_hostile_redirect_storm_is_cut_at_the_limit():
    text = "".join(f'redirect "r{n}@example.com";\n' for n in range(5000))
    started = time.perf_counter()
    outcome = run(text)
    assert time.perf_counter() - started < 2
    assert outcome.actions == tuple(Redirect(f"r{n}@example.com") for n in range(4))
    assert len(outcome.notes) == 4996


def test_hostile_elsif_chain_runs_in_bounded_time():
    chain = ('if header :is "subject" "x0" { fileinto "a"; }\n'
             + "".join(f'elsif header :contains "subject" "x{n}" {{ fileinto "a"; }}\n'
                       for n in range(1, 5000)) + 'else { fileinto "last"; }')
    compiled = script(REQUIRE + chain)
    started = time.perf_counter()
    outcome = compiled.run(message())
    assert time.perf_counter() - started < 0.5
    assert outcome.actions == (FileInto("last"),)


def test_hostile_comparisons_exhaust_the_budget_and_keep():
    view = message(body="a" * (1 << 20))
    text = REQUIRE + "".join(f'if body :raw :contains "needle{n}" {{ discard; }}\n'
                             for n in range(200))
    started = time.perf_counter()
    outcome = run(text, view)
    assert time.perf_counter() - started < 2
    assert outcome.actions == (Keep(),) and "steps" in outcome.error


def test_hostile_matches_on_long_headers_are_fast():
    view = message(HEADER + "Subject: " + "a" * 50_000 + "\r\n")
    text = REQUIRE + "".join(
        f'if header :matches "subject" "{"*a" * 30}*b{n}" {{ discard; }}\n' for n in range(20))
    started = time.perf_counter()
    outcome = run(text, view)
    assert time.perf_counter() - started < 1
    assert outcome.actions == (Keep(),)


def test_hostile_deeply_nested_mime_does_not_escape():
    depth = 3000
    header = "From: a@b.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n"
    body = "".join(f"--b{n}\r\nContent-Type: multipart/mixed; boundary=b{n + 1}\r\n\r\n"
                   for n in range(depth)) + "--b3000\r\n\r\nneedle\r\n"
    started = time.perf_counter()
    outcome = run(REQUIRE + 'if body :text :contains "needle" { fileinto "found"; }',
                  message(header, body))
    assert time.perf_counter() - started < 5
    assert outcome.actions in ((Keep(),), (FileInto("found"),))


def test_a_message_that_cannot_be_read_is_kept():
    def broken(limit):
        raise OSError("spool vanished")
    view = MessageView(HEADER.encode(), size=100, body=broken)
    outcome = run(REQUIRE + 'if body :contains "x" { discard; }', view)
    assert outcome.actions == (Keep(),) and "OSError" in outcome.error
    assert "spool" not in outcome.error            # no internals in what the user sees


def test_a_tree_we_do_not_understand_fails_safely():
    assert compile_script([object()]).run(message()).actions == (Keep(),)
    assert compile_script(None).error


def test_unknown_commands_fail_the_script():
    tree = parse('require "fileinto";\nfileinto "A";')
    tree[1].name = "frobnicate"
    assert "frobnicate" in compile_script(tree).error


def test_the_cache_compiles_each_version_once():
    cache, parsed = ScriptCache(size=2), []

    def source(text):
        return lambda: parsed.append(text) or parse(text)
    first = cache.get((1, "v1"), source("discard;"))
    assert cache.get((1, "v1"), source("discard;")) is first and len(parsed) == 1
    assert cache.get((1, "v2"), source("keep;")).run(message()).actions == (Keep(),)
    cache.get((2, "v1"), source("keep;"))              # evicts (1, "v1"), the oldest
    cache.get((1, "v1"), source("discard;"))
    assert len(parsed) == 4


def test_the_cache_turns_a_parse_failure_into_a_script_that_keeps():
    def failing():
        raise ValueError("line 3: unexpected token")
    compiled = ScriptCache().get("k", failing)
    assert "line 3" in compiled.error and compiled.run(message()).actions == (Keep(),)


def test_one_compiled_script_runs_many_messages_independently():
    compiled = script(REQUIRE + 'if header :contains "subject" "present" '
                      '{ addflag "\\\\Flagged"; fileinto "Gifts"; }')
    gift = compiled.run(message())
    other = compiled.run(message(HEADER.replace("present", "bill")))
    assert gift.actions == (FileInto("Gifts", ("\\Flagged",)),)
    assert other.actions == (Keep(),)
