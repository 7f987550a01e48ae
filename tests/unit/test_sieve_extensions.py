"""``extensions.SUPPORTED`` and the interpreter stay in step: ManageSieve advertises that
list and uploads are checked against it, so every extension on it must run, and nothing
the interpreter runs beyond the base language may be missing from it.
"""

from __future__ import annotations

import pytest
from sievelib.commands import get_command_instance

from mailstack.sieve.actions import Discard, FileInto, Keep, Redirect, Reject
from mailstack.sieve.commands import ACTIONS
from mailstack.sieve.conditions import TESTS
from mailstack.sieve.extensions import SUPPORTED
from tests.support.sieve import message, run, script

BASE = {"require", "if", "elsif", "else", "stop", "keep", "discard", "redirect", "true",
        "false", "not", "allof", "anyof", "exists", "size", "header", "address"}

# One script per supported extension, and what it must do with tests/support's message.
EXAMPLES = {
    "fileinto": ('require "fileinto"; fileinto "A";', (FileInto("A"),)),
    "reject": ('require "reject"; reject "no";', (Reject("no"),)),
    "ereject": ('require "ereject"; ereject "no";', (Reject("no", ereject=True),)),
    "envelope": ('require "envelope"; if envelope :domain "from" "desert.example.org" '
                 '{ discard; }', (Discard(),)),
    "body": ('require "body"; if body :contains "anvil" { discard; }', (Discard(),)),
    "vacation": ('require "vacation"; vacation "away";', None),
    "imap4flags": ('require "imap4flags"; addflag "\\\\Seen"; if hasflag "\\\\seen" '
                   '{ keep; }', (Keep(("\\Seen",)),)),
    "mailbox": ('require ["fileinto", "mailbox"]; if mailboxexists "Lists" '
                '{ fileinto :create "Lists/New"; }', (FileInto("Lists/New", create=True),)),
    "copy": ('require ["copy", "fileinto"]; redirect :copy "a@example.com"; '
             'fileinto :copy "B";', (Redirect("a@example.com"), FileInto("B"), Keep())),
    "comparator-i;octet": ('require "comparator-i;octet"; if header :is :comparator '
                           '"i;octet" "subject" "I have a present for you" { discard; }',
                           (Discard(),)),
    "comparator-i;ascii-casemap": ('require "comparator-i;ascii-casemap"; if header :is '
                                   '"subject" "I HAVE A PRESENT FOR YOU" { discard; }',
                                   (Discard(),)),
}


def test_every_supported_extension_has_an_example():
    assert set(EXAMPLES) == set(SUPPORTED)


@pytest.mark.parametrize("extension", SUPPORTED)
def test_every_supported_extension_runs(extension):
    text, expected = EXAMPLES[extension]
    outcome = run(text, mailboxes={"Lists"})
    assert outcome.error is None, outcome.error
    if expected is None:                         # vacation: its action, and the keep
        assert [type(action).__name__ for action in outcome.actions] == ["Vacation", "Keep"]
    else:
        assert outcome.actions == expected


def _extensions_of(name: str) -> set[str]:
    """The extensions sievelib ties to command ``name`` and its tagged arguments."""
    command = get_command_instance(name, checkexists=False)
    found = {command.extension} if command.extension else set()
    return found | {argument["extension"] for argument in command.args_definition
                    if "extension" in argument}


@pytest.mark.parametrize("name", sorted(set(ACTIONS) | set(TESTS)))
def test_every_command_the_interpreter_runs_is_base_or_supported(name):
    assert _extensions_of(name) <= set(SUPPORTED), name


def test_every_supported_extension_is_reached_by_a_command_the_interpreter_runs():
    reached = set().union(*(_extensions_of(name) for name in set(ACTIONS) | set(TESTS)))
    comparators = {name for name in SUPPORTED if name.startswith("comparator-")}
    assert reached == set(SUPPORTED) - comparators


def test_base_commands_need_no_extension():
    handled = set(ACTIONS) | set(TESTS) | {"require", "if", "elsif", "else"}
    assert BASE <= handled
    for name in BASE:
        assert get_command_instance(name, checkexists=False).extension is None


@pytest.mark.parametrize("extension", ["variables", "relational", "regex", "enotify", "date",
                                      "vacation-seconds", "include", "editheader"])
def test_an_extension_off_the_list_is_refused(extension):
    compiled = script(f'require "{extension}";\nkeep;')
    assert extension in compiled.error
    assert compiled.run(message()).actions == (Keep(),)
