"""ManageSieve's arguments and strings (protocols/managesieve_grammar.py, RFC 5804 §4)."""

from __future__ import annotations

import pytest

from mailstack.protocols.managesieve_grammar import (GrammarError, Number, read_command,
                                                     read_string, response, string)


def test_quoted_literal_and_number_arguments():
    name, args = read_command(b'putScript "my \\"x\\" \\\\" {6+}\r\nkeep;\n 42')
    assert name == "PUTSCRIPT"
    assert args == ['my "x" \\', "keep;\n", 42] and isinstance(args[2], Number)
    assert read_command(b'GETSCRIPT {3}\r\nabc') == ("GETSCRIPT", ["abc"])


@pytest.mark.parametrize("raw", [b"", b'"X"', b'GETSCRIPT  "a"', b'GETSCRIPT "a', b"GETSCRIPT a",
                                 b'GETSCRIPT {9+}\r\nabc', b'GETSCRIPT "\xff"',
                                 b'GETSCRIPT "a\\n"', b'GETSCRIPT "a"x'])
def test_malformed_commands_are_grammar_errors(raw):
    with pytest.raises(GrammarError):
        read_command(raw)


def test_a_sasl_response_is_one_string():
    assert read_string(b'"AGFubgBz"') == "AGFubgBz"
    assert read_string(b"{2+}\r\n*x") == "*x"
    with pytest.raises(GrammarError):
        read_string(b"AGFubgBz")           # IMAP's bare base64 is not ManageSieve's


def test_strings_are_quoted_when_they_can_be_and_literals_otherwise():
    assert string("name") == b'"name"'
    assert string('a"b\\') == b'"a\\"b\\\\"'
    assert read_string(string('a"b\\')) == 'a"b\\'
    assert string("line\r\nbreak") == b"{11}\r\nline\r\nbreak"
    assert string("é") == b'"\xc3\xa9"'


def test_responses_carry_codes_and_text():
    assert response("NO", "QUOTA/MAXSIZE", "too big") == b'NO (QUOTA/MAXSIZE) "too big"\r\n'
    assert response("OK") == b"OK\r\n"
    assert response("BYE", None, "bye") == b'BYE "bye"\r\n'
