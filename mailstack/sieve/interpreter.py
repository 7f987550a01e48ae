"""Running an account's Sieve script on a message at final delivery.

The interface delivery calls (one ``ScriptCache`` for the process)::

    script = cache.get((script_id, updated_at), lambda: scripts.parse(text))  # per version
    view = MessageView(header_block, size=..., envelope_from=sender, envelope_to=rcpt,
                       body=lambda limit: first_octets_of_body(limit))  # once per message;
    outcome = script.run(view, mailboxes=account_folder_names)  # view.for_recipient(rcpt2)
    # outcome.actions: Keep / FileInto / Discard / Redirect / Reject / Vacation (actions.py)
    # outcome.error: the script failed, the actions are Keep() alone; outcome.notes: ignored
    for each Vacation in outcome.actions:
        answer = vacation.respond(action, view, vacation.Account(id, address, aliases),
                                  last_replied=lookup, clock=clock, hostname=hostname)
        # Reply: queue answer.message from "<>" to answer.recipient, record answer.tracking,
        # in the transaction that stores the message; Silence: log answer.reason

Why compile, then run: sievelib's tree is a parse tree, slow to walk and full of quoted
text; ``compile_script`` turns it once into closures (commands.py, conditions.py) and a
``Script`` runs them for each message.  Scripts are compiled once per version and kept in
a ``ScriptCache`` keyed by the caller (script id and update time): delivery on port 25
must cost little more with a 20-rule script than without (issue 19).

Why nothing escapes: a script error must never lose mail (RFC 5228 §2.10.6, issue 19).
``compile_script`` never raises -- a script it cannot compile gives a ``Script`` whose runs
fail -- and ``run`` turns every error into ``Outcome.failed``: kept in INBOX, the error's
text for the log and for the user.

Bounded cost (a customer's script is hostile input): nesting deeper than ``MAX_DEPTH``
(blocks and tests together; RFC 5228 §2.10.7 asks for at least 15 of each) is refused at
compile time; a run may take ``MAX_STEPS`` units -- one per command, and per comparison
one per key and KiB of the value -- and then fails.  Sieve has no loops, so a run's cost
is bounded by the script's size and this budget.

Standards: RFC 5228 §2.10 (evaluation), §2.10.6 (errors), §2.10.7 (limits).
Security: scripts are untrusted input; every limit above is enforced here, not by the
script's author.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable

# grammar registers ereject and mailboxexists with sievelib before any script is parsed.
from mailstack.sieve import grammar  # noqa: F401
from mailstack.sieve.actions import MAX_REDIRECTS, Outcome, Result
from mailstack.sieve.arguments import ScriptError
from mailstack.sieve.commands import Step, Stop, compile_block, run_block
from mailstack.sieve.message_view import MessageView

MAX_DEPTH = 32
MAX_STEPS = 50_000
CACHE_SIZE = 2_000


class Run:
    """The state of one run: the message, the internal flag variable (RFC 5232 §2), the
    account's folders (for mailboxexists), the actions so far, the budget spent."""

    __slots__ = ("message", "flags", "mailboxes", "result", "spent", "budget")

    def __init__(self, message: MessageView, mailboxes: Container[str], result: Result,
                 budget: int):
        self.message, self.mailboxes, self.result = message, mailboxes, result
        self.flags: tuple[str, ...] = ()
        self.spent, self.budget = 0, budget

    def charge(self, units: int) -> None:
        self.spent += units
        if self.spent > self.budget:
            raise ScriptError(f"the script took more than {self.budget} steps on this "
                              f"message and was stopped")


class Script:
    """A compiled script: run it on any number of messages, from any thread."""

    def __init__(self, steps: tuple[Step, ...], error: str | None = None):
        self._steps, self.error = steps, error

    def run(self, message: MessageView, *, mailboxes: Container[str] = frozenset(),
            max_redirects: int = MAX_REDIRECTS, max_steps: int = MAX_STEPS) -> Outcome:
        """The actions for ``message``; ``mailboxes``: the account's folder names."""
        if self.error is not None:
            return Outcome.failed(self.error)
        run = Run(message, mailboxes, Result(max_redirects), max_steps)
        try:
            try:
                run_block(self._steps, run)
            except Stop:
                pass
            return run.result.outcome(run.flags)
        except ScriptError as error:
            return Outcome.failed(str(error))
        except Exception as error:   # a defect of ours must not lose the message either
            return Outcome.failed(f"the script could not be run ({type(error).__name__})")


def compile_script(commands: list) -> Script:
    """The script of sievelib's parse tree (``Parser.result``); never raises."""
    try:
        _check_depth(commands)
        return Script(compile_block(commands, top=True))
    except ScriptError as error:
        return Script((), str(error))
    except Exception as error:       # a tree we did not expect: the script fails, safely
        return Script((), f"the script could not be compiled ({type(error).__name__})")


def _check_depth(commands: list) -> None:
    """Refuse nesting deeper than MAX_DEPTH, without recursing into the tree."""
    stack = [(command, 1) for command in commands]
    while stack:
        command, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ScriptError(f"blocks and tests are nested more than {MAX_DEPTH} deep")
        inner = [*command.children]
        test = command.arguments.get("test")
        if test is not None and not isinstance(test, str):
            inner.append(test)
        inner.extend(command.arguments.get("tests") or ())
        stack.extend((child, depth + 1) for child in inner)


class ScriptCache:
    """Compiled scripts by a key naming one version of one script (its id and update
    time): compiled once, kept for the ``size`` most recently used, shared by threads."""

    def __init__(self, size: int = CACHE_SIZE):
        self._scripts: OrderedDict[Hashable, Script] = OrderedDict()
        self._size, self._lock = size, threading.Lock()

    def get(self, key: Hashable, parse: Callable[[], list]) -> Script:
        """The script for ``key``; ``parse()`` gives its tree when it is not cached (an
        exception from it gives a script that fails, so delivery keeps the mail)."""
        with self._lock:
            script = self._scripts.get(key)
            if script is not None:
                self._scripts.move_to_end(key)
                return script
        try:
            script = compile_script(parse())
        except Exception as error:
            script = Script((), f"the script could not be parsed ({error})")
        with self._lock:
            self._scripts[key] = script
            while len(self._scripts) > self._size:
                self._scripts.popitem(last=False)
        return script
