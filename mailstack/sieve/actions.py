"""What a script decided for one message: the actions delivery carries out.

Why a result of plain values: delivery stores, queues and answers in one transaction
after the script has run (issue 19: all or nothing), so the interpreter only decides.
An ``Outcome`` lists the actions in script order; when the implicit keep applies, a
``Keep`` is among them, so delivery reads one list and never re-derives Sieve's rules.

The rules applied here, once the script has ended:
- implicit keep (RFC 5228 §2.10.2): a ``Keep`` with the flags of the internal variable
  unless ``keep``, ``fileinto``, ``redirect``, ``discard`` or ``reject`` cancelled it;
  ``:copy`` (RFC 3894 §3) makes fileinto and redirect leave it alone;
- one delivery per mailbox (§2.10.3): a second fileinto to the same mailbox (``keep`` and
  ``fileinto "INBOX"`` are the same) is merged, its last flags winning (RFC 5232 §2);
  a second redirect to the same address is dropped;
- at most ``max_redirects`` redirects (§4.2, §10): further ones are ignored, noted, and do
  not cancel the implicit keep;
- ``discard`` appears only when nothing else delivers the message (§4.4: fileinto +
  discard is fileinto);
- conflicts are run-time errors (§2.10.6): two rejects, reject with vacation, reject with
  keep, fileinto or redirect (RFC 5429 §2.3), two vacations (RFC 5230 §4.7).

A run-time error gives ``Outcome.failed``: the message kept in INBOX, no other action,
the error's text for the log and the user (§2.10.6: an error never loses mail).

Standards: RFC 5228 §2.10, §4; RFC 5429 §2.3; RFC 5230 §4.7; RFC 5232 §2, §5;
RFC 3894 §3.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.sieve.arguments import ScriptError

MAX_REDIRECTS = 4        # redirects one run may carry out (Dovecot's default is 4 too)


@dataclass(frozen=True)
class Keep:
    """File into INBOX (RFC 5228 §4.3), with these IMAP flags (RFC 5232 §5)."""
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileInto:
    """File into ``mailbox`` (§4.1); ``create``: make it first if missing (RFC 5490 §3.2)."""
    mailbox: str
    flags: tuple[str, ...] = ()
    create: bool = False


@dataclass(frozen=True)
class Discard:
    """Store nothing, tell nobody (§4.4)."""


@dataclass(frozen=True)
class Redirect:
    """Send the message on to ``address``, unchanged (§4.2)."""
    address: str


@dataclass(frozen=True)
class Reject:
    """Refuse the message (RFC 5429): ``ereject`` at the protocol level when possible."""
    reason: str
    ereject: bool = False


@dataclass(frozen=True)
class Vacation:
    """Answer the sender, if vacation.py's rules allow (RFC 5230 §4): the script's
    arguments, defaults applied; ``handle`` is the :handle given, or derived (§4.2)."""
    reason: str
    handle: str
    days: int = 7
    subject: str | None = None
    from_: str | None = None
    addresses: tuple[str, ...] = ()
    mime: bool = False


Action = Keep | FileInto | Discard | Redirect | Reject | Vacation


@dataclass(frozen=True)
class Outcome:
    """The actions, in script order; ``error``: why the script failed (then the actions
    are the one Keep of INBOX); ``notes``: what was ignored (redirects over the limit)."""
    actions: tuple[Action, ...]
    error: str | None = None
    notes: tuple[str, ...] = ()

    @classmethod
    def failed(cls, error: str) -> "Outcome":
        return cls((Keep(),), error=error)


class Result:
    """The actions of one run as they happen; ``outcome`` applies the rules above."""

    def __init__(self, max_redirects: int = MAX_REDIRECTS):
        self.actions: list[Action] = []
        self.cancelled = False          # the implicit keep
        self.notes: list[str] = []
        self._redirects: set[str] = set()
        self._max_redirects = max_redirects

    def keep(self, flags: tuple[str, ...]) -> None:
        self._store(None, flags, False)
        self.cancelled = True

    def fileinto(self, mailbox: str, flags: tuple[str, ...], create: bool, copy: bool) -> None:
        self._store(None if mailbox.upper() == "INBOX" else mailbox, flags, create)
        self.cancelled = self.cancelled or not copy

    def _store(self, mailbox: str | None, flags: tuple[str, ...], create: bool) -> None:
        """Add a Keep (``mailbox`` None) or FileInto; merge with an earlier one."""
        for index, action in enumerate(self.actions):
            if isinstance(action, Keep) and mailbox is None:
                self.actions[index] = Keep(flags)
                return
            if isinstance(action, FileInto) and action.mailbox == mailbox:
                self.actions[index] = FileInto(mailbox, flags, create or action.create)
                return
        self.actions.append(Keep(flags) if mailbox is None else FileInto(mailbox, flags, create))

    def redirect(self, address: str, copy: bool) -> None:
        key = address.lower()
        if key not in self._redirects:
            if len(self._redirects) >= self._max_redirects:
                self.notes.append(f"redirect to {address} ignored: at most "
                                  f"{self._max_redirects} redirects per message")
                return
            self._redirects.add(key)
            self.actions.append(Redirect(address))
        self.cancelled = self.cancelled or not copy

    def discard(self) -> None:
        if Discard() not in self.actions:
            self.actions.append(Discard())
        self.cancelled = True

    def reject(self, reason: str, ereject: bool) -> None:
        if any(isinstance(action, Reject) for action in self.actions):
            raise ScriptError("reject/ereject may be used only once (RFC 5429 §2.3)")
        self.actions.append(Reject(reason, ereject))
        self.cancelled = True

    def vacation(self, vacation: Vacation) -> None:
        if any(isinstance(action, Vacation) for action in self.actions):
            raise ScriptError("vacation may be used only once (RFC 5230 §4.7)")
        self.actions.append(vacation)

    def outcome(self, flags: tuple[str, ...]) -> Outcome:
        """The final actions, ``flags`` being the internal variable's at the end."""
        self._check_conflicts()
        if not self.cancelled:
            self._store(None, flags, False)
        delivering = (Keep, FileInto, Redirect)
        actions = self.actions
        if any(isinstance(action, delivering) for action in actions):
            actions = [action for action in actions if not isinstance(action, Discard)]
        return Outcome(tuple(actions), notes=tuple(self.notes))

    def _check_conflicts(self) -> None:
        kinds = {type(action) for action in self.actions}
        if Reject not in kinds:
            return
        if Vacation in kinds:
            raise ScriptError("reject/ereject cannot be used with vacation (RFC 5429 §2.3)")
        if kinds & {Keep, FileInto, Redirect}:
            raise ScriptError("reject/ereject cannot be used with keep, fileinto or redirect "
                              "(RFC 5429 §2.3)")
