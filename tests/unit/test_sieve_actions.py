"""Sieve's actions and how they combine (sieve/commands.py, sieve/actions.py): keep,
fileinto (:create, :copy, :flags), discard, redirect (limit, :copy), reject/ereject,
vacation, stop, if/elsif/else, the implicit keep (RFC 5228 §2.10.2), imap4flags (RFC
5232) and the conflicts that are run-time errors (RFC 5429 §2.3, RFC 5230 §4.7).
"""

from __future__ import annotations

from mailstack.sieve.actions import (Discard, FileInto, Keep, Redirect, Reject, Vacation)
from tests.support.sieve import run, script

REQUIRE = ('require ["fileinto", "reject", "ereject", "vacation", "imap4flags", "mailbox", '
           '"copy"];\n')


def actions(text: str, **options):
    outcome = run(REQUIRE + text, **options)
    assert outcome.error is None, outcome.error
    return outcome.actions


def failed(text: str) -> str:
    outcome = run(REQUIRE + text)
    assert outcome.actions == (Keep(),), outcome
    return outcome.error


# implicit keep, keep, discard, stop --------------------------------------------------

def test_an_empty_script_keeps():
    assert actions("") == (Keep(),)


def test_no_action_taken_means_implicit_keep():
    assert actions("if size :over 500K { discard; }") == (Keep(),)


def test_discard_cancels_the_implicit_keep():
    assert actions("discard;") == (Discard(),)


def test_fileinto_cancels_the_implicit_keep_and_discard_adds_nothing():
    assert actions('fileinto "A"; discard;') == (FileInto("A"),)
    assert actions('discard; fileinto "A";') == (FileInto("A"),)


def test_explicit_keep_and_discard_keeps():
    assert actions("keep; discard;") == (Keep(),)


def test_keep_twice_and_fileinto_inbox_are_one_delivery():
    assert actions('keep; fileinto "INBOX"; keep;') == (Keep(),)
    assert actions('fileinto "inbox";') == (Keep(),)


def test_fileinto_the_same_mailbox_twice_is_one_delivery():
    assert actions('fileinto "A"; fileinto "B"; fileinto "A";') == (FileInto("A"),
                                                                    FileInto("B"))


def test_fileinto_create_is_kept_when_merged():
    assert actions('fileinto :create "New"; fileinto "New";') == (FileInto("New", create=True),)


def test_fileinto_copy_leaves_the_implicit_keep():
    assert actions('fileinto :copy "Archive";') == (FileInto("Archive"), Keep())


def test_stop_ends_the_script_and_takes_the_implicit_keep():
    assert actions('stop; fileinto "never";') == (Keep(),)
    assert actions('fileinto "A"; stop; fileinto "B";') == (FileInto("A"),)


def test_stop_inside_a_block_ends_everything():
    assert actions('if true { fileinto "A"; stop; }\nfileinto "B";') == (FileInto("A"),)


def test_if_elsif_else_runs_exactly_one_block():
    chain = ('if header :contains "from" "{0}" {{ fileinto "one"; }}\n'
             'elsif header :contains "subject" "{1}" {{ fileinto "two"; }}\n'
             'else {{ fileinto "three"; }}\n')
    assert actions(chain.format("coyote", "present")) == (FileInto("one"),)
    assert actions(chain.format("nobody", "present")) == (FileInto("two"),)
    assert actions(chain.format("nobody", "nothing")) == (FileInto("three"),)


def test_consecutive_ifs_are_separate_chains():
    assert actions('if true { fileinto "A"; }\nif true { fileinto "B"; } else { discard; }') \
        == (FileInto("A"), FileInto("B"))


# redirect -----------------------------------------------------------------------------

def test_redirect_cancels_the_implicit_keep_and_normalises():
    assert actions('redirect "Bart@Example.COM";') == (Redirect("bart@example.com"),)


def test_redirect_copy_keeps_too():
    assert actions('redirect :copy "bart@example.com";') == (Redirect("bart@example.com"),
                                                            Keep())


def test_redirect_to_the_same_address_twice_is_one():
    assert actions('redirect "a@example.com"; redirect "A@example.com";') == (
        Redirect("a@example.com"),)


def test_redirects_over_the_limit_are_ignored_and_noted():
    text = "".join(f'redirect "r{n}@example.com";\n' for n in range(6))
    outcome = run(REQUIRE + text, max_redirects=4)
    assert outcome.error is None
    assert outcome.actions == tuple(Redirect(f"r{n}@example.com") for n in range(4))
    assert len(outcome.notes) == 2 and "r4@example.com" in outcome.notes[0]


def test_an_ignored_redirect_does_not_cancel_the_implicit_keep():
    outcome = run(REQUIRE + 'redirect "a@example.com";', max_redirects=0)
    assert outcome.actions == (Keep(),) and outcome.notes


def test_redirect_to_an_invalid_address_fails_the_script():
    for address in ("not an address", "a@b@c", "a%b@example.com", ""):
        compiled = script(REQUIRE + f'redirect "{address}";')
        assert compiled.error and "redirect" in compiled.error


# reject, ereject, vacation, conflicts --------------------------------------------------

def test_reject_and_ereject_cancel_the_implicit_keep():
    assert actions('reject "no thanks";') == (Reject("no thanks"),)
    assert actions('ereject "spam";') == (Reject("spam", ereject=True),)
    assert actions('discard; reject "x";') == (Discard(), Reject("x"))


def test_reject_multi_line_reason():
    reason = actions('reject text:\nYour message is too big.\n..And dotted.\n.\n;')[0].reason
    assert reason == "Your message is too big.\r\n.And dotted.\r\n"


def test_two_rejects_are_an_error():
    assert "once" in failed('reject "a"; ereject "b";')


def test_reject_with_keep_fileinto_or_redirect_is_an_error():
    assert "reject" in failed('keep; reject "a";')
    assert "reject" in failed('reject "a"; fileinto "A";')
    assert "reject" in failed('redirect "x@example.com"; reject "a";')


def test_reject_with_vacation_is_an_error():
    assert "vacation" in failed('vacation "away"; reject "a";')


def test_vacation_leaves_the_implicit_keep():
    found = actions('vacation :days 23 :subject "Away" :addresses ["a@example.com"] '
                    '"I am away";')
    assert found[1] == Keep() and isinstance(found[0], Vacation)
    assert (found[0].days, found[0].subject, found[0].addresses, found[0].reason) == (
        23, "Away", ("a@example.com",), "I am away")


def test_vacation_twice_is_an_error():
    assert "once" in failed('vacation "a"; vacation "b";')


def test_vacation_days_are_clamped_and_default_to_seven():
    assert actions('vacation "a";')[0].days == 7
    assert actions('vacation :days 0 "a";')[0].days == 1
    assert actions('vacation :days 100000 "a";')[0].days == 365


def test_vacation_handle_same_arguments_same_handle_else_different():
    first = actions('vacation "I am out";')[0].handle
    assert actions('vacation "I am out";')[0].handle == first
    assert actions('vacation "I am out, really";')[0].handle != first
    assert actions('vacation :subject "a" "b";')[0].handle != actions(   # counted strings
        'vacation :subject "ab" "";')[0].handle
    explicit = actions('vacation :handle "ran-away" "x";')[0].handle
    assert explicit == actions('vacation :handle "ran-away" "y";')[0].handle != first


def test_vacation_invalid_from_or_mime_fails_the_script():
    assert "from" in script(REQUIRE + 'vacation :from "not an address" "x";').error
    assert "mime" in script(REQUIRE + 'vacation :mime "Hello there";').error
    assert "mime" in script(REQUIRE + 'vacation :mime text:\nSubject: x\n\nbody\n.\n;').error
    assert script(REQUIRE + 'vacation :mime text:\nContent-Type: text/plain\n\nhi\n.\n;'
                  ).error is None


# imap4flags ------------------------------------------------------------------------------

def test_flags_apply_to_keep_fileinto_and_the_implicit_keep():
    assert actions('addflag "\\\\Seen";') == (Keep(("\\Seen",)),)
    assert actions('setflag "\\\\flagged";\nfileinto "A";') == (FileInto("A", ("\\Flagged",)),)


def test_flags_are_captured_when_the_action_runs():
    assert actions('addflag "one"; keep; addflag "two"; fileinto "A";') == (
        Keep(("one",)), FileInto("A", ("one", "two")))


def test_explicit_flags_win_over_the_internal_variable():
    assert actions('addflag "x"; fileinto :flags "\\\\Answered y" "A";') == (
        FileInto("A", ("\\Answered", "y")),)
    assert actions('addflag "x"; keep :flags "";') == (Keep(()),)


def test_setflag_addflag_removeflag_as_a_case_insensitive_set():
    assert actions('setflag ["a b", "C"]; addflag ["A", "d"]; removeflag "c B";') == (
        Keep(("a", "d")),)
    assert actions('addflag "x"; setflag "y";') == (Keep(("y",)),)
    assert actions('addflag "x"; removeflag ["", "nothing"];') == (Keep(("x",)),)


def test_flags_that_cannot_be_stored_are_ignored():
    assert actions('addflag ["\\\\Recent", "\\\\Bogus", "bad(flag", "ok"];') == (
        Keep(("ok",)),)


def test_last_flags_win_when_deliveries_merge():
    assert actions('fileinto :flags "a" "A"; fileinto :flags "b" "A";') == (
        FileInto("A", ("b",)),)


def test_flag_actions_with_a_variable_are_runtime_errors():
    assert "variables" in failed('setflag "flagvar" "\\\\Flagged";')


# errors keep the message -----------------------------------------------------------------

def test_an_error_drops_the_actions_taken_before_it():
    outcome = run(REQUIRE + 'fileinto "A"; redirect "x@example.com"; addflag "\\\\Seen";'
                  'reject "x";')
    assert outcome.actions == (Keep(),) and outcome.error


def test_an_unsupported_extension_fails_the_script():
    compiled = script('require ["fileinto", "variables"];\nfileinto "A";')
    assert "variables" in compiled.error
    assert compiled.run(None).actions == (Keep(),)


def test_require_after_a_command_fails_the_script():
    assert "require" in script('keep;\nrequire "fileinto";').error


def test_invalid_mailbox_names_fail_the_script():
    assert "mailbox" in script(REQUIRE + 'fileinto "";').error
    assert "mailbox" in script(REQUIRE + 'fileinto "a\nb";').error      # a line break
    assert "mailbox" in script(REQUIRE + f'fileinto "{"x" * 256}";').error
