"""Reading a customer's Sieve script: the parse tree, or the error and its line.

Why one place: ManageSieve's PUTSCRIPT and CHECKSCRIPT (RFC 5804 §2.6, §2.12), the admin
CLI's ``sieve put`` and the interpreter at delivery must agree on what a valid script is,
so all of them call ``parse``.  The grammar is ``sievelib``'s (maintained, used by
Modoboa); what it does not decide is ours:

- a script may ``require`` only what ``extensions.SUPPORTED`` lists (sievelib knows more,
  and accepts any name in ``require``): what is stored is always something delivery runs;
- sievelib knows neither ``ereject`` (RFC 5429 §2.1) nor ``mailboxexists`` (RFC 5490 §3):
  ``grammar.py`` registers both, once, at import.

Standards: RFC 5228 (Sieve), RFC 5429 (ereject), RFC 5490 §3 (mailboxexists),
RFC 5804 §2.6 (errors reported with their line).
Security: sievelib's parser state is per thread, so scripts may be parsed in the database
threads (as the protocol does, off the reactor); a script is bounded by ``[sieve]
max_script_size`` before it is parsed.
"""

from __future__ import annotations

import re

from sievelib.parser import Parser

# grammar registers ereject and mailboxexists with sievelib before any script is parsed.
from mailstack.sieve import grammar  # noqa: F401
from mailstack.sieve.extensions import SUPPORTED
from mailstack.sieve.interpreter import compile_script


class ScriptError(ValueError):
    """The script does not parse, or requires what we do not run: ``line`` (1-based) and
    a message the customer may read."""

    def __init__(self, line: int | None, message: str):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line, self.message = line, message


_LINE_PREFIX = re.compile(r"line (\d+): ")
MAX_NAME = 128               # characters of a script name
# RFC 5804 §1.6: no control characters, no line or paragraph separator.
_BAD_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def valid_name(name: str) -> bool:
    """Whether ``name`` may name a script (RFC 5804 §1.6), for ManageSieve and the CLI."""
    return 0 < len(name) <= MAX_NAME and not _BAD_NAME.search(name)


def parse(text: str) -> list:
    """The script's top-level sievelib commands; ScriptError when it is not a script we
    run."""
    if "\x00" in text:       # nothing in Sieve needs it, and PostgreSQL cannot store it
        raise ScriptError(_line_of(text, "\x00"), "NUL characters are not allowed")
    parser = Parser()
    if not parser.parse(text.encode("utf-8")):
        line = parser.error_pos[0] if parser.error_pos else 1
        raise ScriptError(line, _LINE_PREFIX.sub("", parser.error or "syntax error", count=1))
    for command in parser.result:
        if command.name == "require":
            _check_required(command, text)
    return parser.result


def check(text: str) -> None:
    """ScriptError, or nothing: PUTSCRIPT's and CHECKSCRIPT's question.  A script that
    parses is also compiled, so what delivery would refuse (two vacations, nesting past
    the limit, a bad redirect address) is refused at upload, not found at delivery."""
    script = compile_script(parse(text))
    if script.error is not None:
        raise ScriptError(None, script.error)


def required(command) -> list[str]:
    """The extension names of one ``require`` command."""
    value = command.arguments["capabilities"]
    names = value if isinstance(value, list) else [value]
    return [name.strip('"') for name in names]


def _check_required(command, text: str) -> None:
    for name in required(command):
        if name not in SUPPORTED:
            raise ScriptError(_line_of(text, f'"{name}"'),
                              f'unsupported extension "{name}"')


def _line_of(text: str, needle: str) -> int:
    at = text.find(needle)
    return 1 if at < 0 else text.count("\n", 0, at) + 1
