"""Checking a customer's script (sieve/scripts.py): sievelib's grammar, our extensions only,
errors with their line (RFC 5804 §2.6), ereject and mailboxexists known."""

from __future__ import annotations

import pytest

from mailstack.sieve import scripts
from mailstack.sieve.extensions import SUPPORTED

EVERYTHING = """require ["fileinto", "reject", "ereject", "envelope", "body", "vacation",
         "imap4flags", "mailbox"];
if address :domain :is "from" "school.example" { fileinto :create "School"; stop; }
elsif envelope :localpart :matches "from" "owner-*" { discard; }
elsif body :contains "unsubscribe" { addflag "\\\\Seen"; keep; }
elsif mailboxexists "Archive" { fileinto :flags "\\\\Flagged" "Archive"; }
elsif size :over 10M { reject "too big"; }
elsif exists "x-spam" { ereject "no spam"; }
vacation :days 7 :subject "Away" :from "ann@example.test" "I am away.";
"""


def test_a_script_using_every_supported_extension_parses_into_commands():
    tree = scripts.parse(EVERYTHING)
    assert [c.name for c in tree] == ["require", "if", "elsif", "elsif", "elsif", "elsif",
                                      "elsif", "vacation"]
    assert set(scripts.required(tree[0])) <= set(SUPPORTED)


def test_ereject_and_mailboxexists_need_their_require():
    with pytest.raises(scripts.ScriptError, match="ereject"):
        scripts.parse('keep;\nereject "no";\n')
    with pytest.raises(scripts.ScriptError, match="mailbox"):
        scripts.parse('if mailboxexists "A" { keep; }\n')


@pytest.mark.parametrize("extension", ["date", "variables", "vacation-seconds", "foo",
                                       "enotify", "FileInto"])
def test_a_require_outside_supported_is_refused_at_its_line(extension):
    script = f'# filters\nrequire ["fileinto",\n  "{extension}"];\nkeep;\n'
    with pytest.raises(scripts.ScriptError) as raised:
        scripts.check(script)
    assert raised.value.line == 3
    assert raised.value.message == f'unsupported extension "{extension}"'


def test_a_syntax_error_is_reported_with_its_line():
    with pytest.raises(scripts.ScriptError) as raised:
        scripts.check('require "fileinto";\nif header :is "a" "b" {\n  fileinto "x"\n}\n')
    assert raised.value.line == 4
    assert str(raised.value).startswith("line 4: ")


def test_a_command_sievelib_knows_but_we_do_not_run_is_refused():
    with pytest.raises(scripts.ScriptError, match="variables"):
        scripts.check('set "a" "b";\n')


def test_a_script_that_parses_but_cannot_run_is_refused_at_upload():
    """What the interpreter would refuse at delivery is refused by CHECKSCRIPT/PUTSCRIPT."""
    with pytest.raises(scripts.ScriptError) as raised:
        scripts.check('if address :is "subject" "x" {\n  redirect "not an address";\n}\n')
    assert raised.value.line is None and "subject" in str(raised.value)


def test_an_empty_script_is_valid():
    assert scripts.parse("") == []


def test_a_nul_character_is_refused_at_its_line():
    with pytest.raises(scripts.ScriptError) as raised:
        scripts.check('keep;\nif header :is "a" "b\x00c" { keep; }\n')
    assert (raised.value.line, raised.value.message) == (2, "NUL characters are not allowed")
