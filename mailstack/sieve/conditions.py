"""Sieve's test commands compiled into functions of a run: ``test(run) -> bool``.

Why compiled: each test's arguments (strings unquoted, keys folded, globs cut, header
names lower-cased) are read from sievelib's tree once per script; running a test is then
a few lookups in the message view (which decodes each field once per message) and the
matcher of matching.py.  A test charges the run for the comparisons it makes
(``run.charge``), so a hostile script's cost is bounded (interpreter.py).

Choices: ``address`` is allowed only on fields that carry addresses (RFC 5228 §5.1 MUST);
``envelope`` knows "from" and "to" (§5.4: others SHOULD be errors); both are checked when
the script is compiled.  ``hasflag`` with a variable list needs the variables extension,
which we do not run: reaching it is a run-time error (RFC 5232 §3).  ``mailboxexists`` asks
the run's ``mailboxes`` (the account's folders, given by delivery); INBOX always exists.

Standards: RFC 5228 §5 (address, allof, anyof, envelope, exists, false, header, not, size,
true); RFC 5173 §4 (body); RFC 5232 §4 (hasflag); RFC 5490 §3.1 (mailboxexists).
"""

from __future__ import annotations

from collections.abc import Callable

from mailstack.sieve import body, matching
from mailstack.sieve.arguments import ScriptError, number, string, strings, tag, tag_value
from mailstack.sieve.flags import words
from mailstack.sieve.message_view import ADDRESS_FIELDS, address_part

Test = Callable[["object"], bool]
ENVELOPE_PARTS = ("from", "to")


def compile_test(command) -> Test:
    compiler = TESTS.get(command.name)
    if compiler is None:
        raise ScriptError(f"unknown test {command.name!r}")
    return compiler(command)


def _matcher(command, keys: tuple[str, ...]) -> matching.Matcher:
    comparator = tag_value(command, "comparator")
    comparator = string(comparator) if comparator else matching.ASCII_CASEMAP
    match_type = tag(command, "match-type", ":is")
    try:
        return matching.matcher(match_type, comparator, keys)
    except ValueError as error:
        raise ScriptError(str(error)) from None


def _cost(value: str, keys: int) -> int:
    """What comparing ``value`` with ``keys`` keys is charged: longer values cost more."""
    return keys * (1 + (len(value) >> 10))


def _constant(result: bool) -> Callable[[object], Test]:
    return lambda command: lambda run: result


def _not(command) -> Test:
    inner = compile_test(command.arguments["test"])
    return lambda run: not inner(run)


def _allof(command) -> Test:
    tests = tuple(compile_test(test) for test in command.arguments["tests"])
    return lambda run: all(test(run) for test in tests)


def _anyof(command) -> Test:
    tests = tuple(compile_test(test) for test in command.arguments["tests"])
    return lambda run: any(test(run) for test in tests)


def _exists(command) -> Test:
    names = strings(command.arguments["header-names"])
    return lambda run: all(run.message.exists(name) for name in names)


def _size(command) -> Test:
    limit = number(command.arguments["limit"])
    if tag(command, "comparator") == ":over":
        return lambda run: run.message.size > limit
    return lambda run: run.message.size < limit


def _header(command) -> Test:
    names = tuple(name.lower() for name in strings(command.arguments["header-names"]))
    keys = strings(command.arguments["key-list"])
    match, count = _matcher(command, keys), len(keys)

    def test(run) -> bool:
        for name in names:
            for value in run.message.header(name):
                run.charge(_cost(value, count))
                if match(value):
                    return True
        return False
    return test


def _address(command) -> Test:
    names = tuple(name.lower() for name in strings(command.arguments["header-list"]))
    wrong = [name for name in names if name not in ADDRESS_FIELDS]
    if wrong:
        raise ScriptError(f"address test on {wrong[0]!r}, a field without addresses "
                          f"(RFC 5228 §5.1); use header")
    keys = strings(command.arguments["key-list"])
    match, part, count = _matcher(command, keys), tag(command, "address-part", ":all"), len(keys)

    def test(run) -> bool:
        for name in names:
            for local, domain in run.message.addresses(name):
                value = address_part(local, domain, part)
                run.charge(count)
                if value is not None and match(value):
                    return True
        return False
    return test


def _envelope(command) -> Test:
    parts = tuple(name.lower() for name in strings(command.arguments["header-list"]))
    unknown = [name for name in parts if name not in ENVELOPE_PARTS]
    if unknown:
        raise ScriptError(f"unknown envelope part {unknown[0]!r} (RFC 5228 §5.4)")
    keys = strings(command.arguments["key-list"])
    match, part = _matcher(command, keys), tag(command, "address-part", ":all")

    def test(run) -> bool:
        for name in parts:
            address = run.message.envelope_from if name == "from" else run.message.envelope_to
            run.charge(len(keys))
            if not address:              # the null reverse-path: "" whatever the part
                value = ""
            else:
                local, at, domain = address.rpartition("@")
                value = address_part(local, domain, part) if at else address_part(
                    address, None, part)
            if value is not None and match(value):
                return True
        return False
    return test


def _body(command) -> Test:
    transform = tag(command, "body-transform", ":text")
    types = strings(tag_value(command, "body-transform")) if transform == ":content" else ()
    keys = strings(command.arguments["key-list"])
    match, count = _matcher(command, keys), len(keys)

    def test(run) -> bool:
        for text in body.strings(run.message, transform, types):
            run.charge(_cost(text, count))
            if match(text):
                return True
        return False
    return test


def _hasflag(command) -> Test:
    if "variable-list" in command.arguments:
        return _needs_variables
    keys = tuple(words(strings(command.arguments["list-of-flags"])))
    match = _matcher(command, keys)

    def test(run) -> bool:
        run.charge(len(run.flags) * len(keys))
        return any(match(flag) for flag in run.flags)
    return test


def _needs_variables(run) -> bool:
    raise ScriptError("hasflag with a variable name needs the variables extension, "
                      "which is not supported (RFC 5232 §4)")


def _mailboxexists(command) -> Test:
    names = strings(command.arguments["mailbox-names"])
    return lambda run: all(name.upper() == "INBOX" or name in run.mailboxes for name in names)


TESTS: dict[str, Callable[[object], Test]] = {
    "true": _constant(True), "false": _constant(False), "not": _not, "allof": _allof,
    "anyof": _anyof, "exists": _exists, "size": _size, "header": _header,
    "address": _address, "envelope": _envelope, "body": _body, "hasflag": _hasflag,
    "mailboxexists": _mailboxexists,
}
