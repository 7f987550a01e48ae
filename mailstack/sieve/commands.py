"""Sieve's control and action commands compiled into steps: ``step(run) -> None``.

Why compiled: every argument is a constant in a script without variables, so each is
read, checked and converted once, when the script is compiled -- a redirect's address
normalised, a vacation's days clamped and its handle derived, a ``:flags`` list reduced to
storable flags -- and a step only records its action in the run's ``Result``.  An
``if``/``elsif``/``else`` chain becomes one step that runs the first block whose test
holds (RFC 5228 §3.1).

Errors found while compiling (an extension we do not run, a ``require`` after another
command, an invalid redirect address, a vacation ``:from`` that is no address, a
``:mime`` reason that is no MIME entity) fail the whole script (§2.10.6: implementations
MAY check code that is not reached).

Standards: RFC 5228 §3 (if, require, stop), §4 (fileinto, redirect, keep, discard);
RFC 5429 §2 (reject, ereject); RFC 5230 §4 (vacation); RFC 5232 §3, §5 (setflag, addflag,
removeflag, :flags); RFC 5490 §3.2 (:create); RFC 3894 §3 (:copy).
"""

from __future__ import annotations

from collections.abc import Callable

from mailstack import addresses
from mailstack.message.address_list import parse_addresses
from mailstack.sieve import flags as imap_flags
from mailstack.sieve import vacation as vacation_rules
from mailstack.sieve.actions import Vacation
from mailstack.sieve.arguments import ScriptError, number, string, strings, tag_value
from mailstack.sieve.conditions import compile_test
from mailstack.sieve.extensions import SUPPORTED
from mailstack.sieve.vacation_reply import mime_problem

Step = Callable[["object"], None]
BASE_COMPARATORS = ("comparator-i;octet", "comparator-i;ascii-casemap")
MAX_MAILBOX_NAME = 255


class Stop(Exception):
    """``stop`` (RFC 5228 §3.3): the run ends here."""


def run_block(steps: tuple[Step, ...], run) -> None:
    for step in steps:
        run.charge(1)
        step(run)


def compile_block(commands, top: bool = False) -> tuple[Step, ...]:
    """The steps of a block (or of the script, ``top``): chains folded, requires checked."""
    steps: list[Step] = []
    index, preamble = 0, top
    while index < len(commands):
        command = commands[index]
        if command.name == "require":
            if not preamble:
                raise ScriptError("require must come before any other command (RFC 5228 §3.2)")
            _check_require(command)
            index += 1
            continue
        preamble = False
        if command.name == "if":
            index = _compile_chain(commands, index, steps)
        elif command.name in ("elsif", "else"):
            raise ScriptError(f"{command.name} without if (RFC 5228 §3.1)")
        else:
            steps.append(compile_action(command))
            index += 1
    return tuple(steps)


def _check_require(command) -> None:
    for capability in strings(command.arguments["capabilities"]):
        if capability not in SUPPORTED and capability not in BASE_COMPARATORS:
            raise ScriptError(f"extension {capability!r} is not supported")


def _compile_chain(commands, index: int, steps: list[Step]) -> int:
    """Fold ``if`` [``elsif``...] [``else``] at ``index`` into one step; the next index."""
    branches = [(compile_test(commands[index].arguments["test"]),
                 compile_block(commands[index].children))]
    index += 1
    while index < len(commands) and commands[index].name in ("elsif", "else"):
        command = commands[index]
        test = compile_test(command.arguments["test"]) if command.name == "elsif" else None
        branches.append((test, compile_block(command.children)))
        index += 1
        if command.name == "else":
            break
    steps.append(_single(*branches[0]) if len(branches) == 1 else _chain(tuple(branches)))
    return index


def _single(test, block: tuple[Step, ...]) -> Step:
    """An ``if`` alone, the most common rule: its own step, no loop over branches."""
    def step(run) -> None:
        if test(run):
            run_block(block, run)
    return step


def _chain(branches: tuple) -> Step:
    def step(run) -> None:
        for test, block in branches:
            if test is None or test(run):
                run_block(block, run)
                return
    return step


def compile_action(command) -> Step:
    compiler = ACTIONS.get(command.name)
    if compiler is None:
        raise ScriptError(f"unknown command {command.name!r}")
    return compiler(command)


def _stop(command) -> Step:
    def step(run) -> None:
        raise Stop()
    return step


def _given_flags(command) -> tuple[str, ...] | None:
    """The ``:flags`` list, reduced to storable flags; None when not given."""
    if "flags" not in command.arguments:
        return None
    return imap_flags.added((), strings(tag_value(command, "flags")))


def _keep(command) -> Step:
    given = _given_flags(command)
    return lambda run: run.result.keep(run.flags if given is None else given)


def _fileinto(command) -> Step:
    mailbox = string(command.arguments["mailbox"])
    if not mailbox or len(mailbox) > MAX_MAILBOX_NAME or not mailbox.isprintable():
        raise ScriptError(f"fileinto: {mailbox!r} is not a valid mailbox name")
    given, create, copy = (_given_flags(command), "create" in command.arguments,
                           "copy" in command.arguments)
    return lambda run: run.result.fileinto(mailbox, run.flags if given is None else given,
                                           create, copy)


def _redirect(command) -> Step:
    text = string(command.arguments["address"]).strip()
    try:
        address = addresses.normalise(text[1:-1] if text.startswith("<") and
                                      text.endswith(">") else text)
    except addresses.AddressError as error:
        raise ScriptError(f"redirect: {text!r} is not a valid address ({error})") from None
    copy = "copy" in command.arguments
    return lambda run: run.result.redirect(address, copy)


def _discard(command) -> Step:
    return lambda run: run.result.discard()


def _reject(command) -> Step:
    reason, ereject = string(command.arguments["text"]), command.name == "ereject"
    return lambda run: run.result.reject(reason, ereject)


def _vacation(command) -> Step:
    reason = string(command.arguments["reason"])
    subject = _optional(command, "subject")
    sender = _optional(command, "from")
    mime = "mime" in command.arguments
    if sender is not None and not _one_address(sender):
        raise ScriptError(f"vacation :from {sender!r} is not an address (RFC 5230 §4.3)")
    if mime and (problem := mime_problem(reason)):
        raise ScriptError(f"vacation :mime: {problem} (RFC 5230 §4.4, §5)")
    days = tag_value(command, "days")
    mine = strings(tag_value(command, "addresses")) if "addresses" in command.arguments else ()
    action = Vacation(
        reason=reason, subject=subject, from_=sender, mime=mime, addresses=mine,
        days=vacation_rules.clamped_days(number(days) if days else None),
        handle=vacation_rules.handle(_optional(command, "handle"), subject, sender, mime,
                                     reason))
    return lambda run: run.result.vacation(action)


def _optional(command, name: str) -> str | None:
    return string(tag_value(command, name)) if name in command.arguments else None


def _one_address(text: str) -> bool:
    found = parse_addresses(text.encode("utf-8"), groups=False)
    return len(found) == 1 and bool(found[0][2]) and found[0][3] is not None


def _flag_action(change: Callable) -> Callable[[object], Step]:
    def compiler(command) -> Step:
        if "variable-name" in command.arguments:
            return _needs_variables
        given = strings(command.arguments["list-of-flags"])

        def step(run) -> None:
            run.flags = change(run.flags, given)
        return step
    return compiler


def _needs_variables(run) -> None:
    raise ScriptError("a flag action with a variable name needs the variables extension, "
                      "which is not supported (RFC 5232 §3)")


ACTIONS: dict[str, Callable[[object], Step]] = {
    "stop": _stop, "keep": _keep, "fileinto": _fileinto, "redirect": _redirect,
    "discard": _discard, "reject": _reject, "ereject": _reject, "vacation": _vacation,
    "setflag": _flag_action(lambda current, given: imap_flags.added((), given)),
    "addflag": _flag_action(imap_flags.added),
    "removeflag": _flag_action(imap_flags.removed),
}
