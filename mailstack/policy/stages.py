"""The runner of a stage table: checks in order, the first decision that is not DUNNO wins.

Why a runner apart from the tables: the tables (``mx.py``, ``submission.py``) are data an
operator reads -- "whitelist beats blacklist" is a line order, not a flag buried in a
check -- and this is the one place that says how a table is read.  A check exposes
``name`` and ``check(request)``, returning a Decision or a Deferred of one.  A check that
raises becomes a DEFER (4xx): a bug or an outage must never turn into a permanent bounce.
When every check says DUNNO the chain's ``default`` decides: DUNNO (go on) for most
stages, REJECT for the relay chain, so that nothing but an explicit PERMIT opens relay.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from mailstack import replies
from mailstack.policy.decision import DUNNO, Decision, Verdict

log = Logger(namespace="mailstack.policy")


class Chain:
    def __init__(self, name: str, checks, default=DUNNO):
        """``default``: a Decision, or a function of the request returning one (the
        relay refusal names the recipient)."""
        self.name = name
        self.checks = tuple(checks)
        self.default = default

    @property
    def default_verdict(self) -> Verdict:
        return getattr(self.default, "verdict", Verdict.REJECT)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(check.name for check in self.checks)

    def run(self, request) -> defer.Deferred:
        """The chain's decision on ``request``, as a Deferred.  Checks that answer at once
        (most: they read what is in memory) are run in a plain loop; only a check that
        returns a Deferred makes the rest wait for it -- the chain runs for every command
        of every session, so it must not cost a generator and a Deferred per check."""
        return self._run_from(0, request)

    def _run_from(self, index: int, request) -> defer.Deferred:
        checks = self.checks
        while index < len(checks):
            check = checks[index]
            try:
                decision = check.check(request)
            except Exception:
                return defer.succeed(self._broken(Failure(), check))
            if isinstance(decision, defer.Deferred):
                return decision.addCallbacks(self._answered, self._broken,
                                             callbackArgs=(index, request),
                                             errbackArgs=(check,))
            if decision.verdict is not Verdict.DUNNO:
                return defer.succeed(decision)
            index += 1
        return defer.succeed(self.default(request) if callable(self.default) else self.default)

    def _answered(self, decision: Decision, index: int, request):
        if decision.verdict is not Verdict.DUNNO:
            return decision
        return self._run_from(index + 1, request)

    def _broken(self, failure: Failure, check) -> Decision:
        """A check that raised: DEFER (4xx), never a permanent refusal."""
        log.failure("policy check {check} failed", failure, check=check.name)
        return Decision(Verdict.DEFER, check.name, "check failed", replies.STORE_UNAVAILABLE)


@dataclass(frozen=True)
class Tables:
    """One port's stage tables, in the order the stages run.

    connect  at connect, before the banner: a REJECT drops the client unanswered (firewall)
    client   started at connect, delivered at the first RCPT (C3: the log gets From and To);
             a PERMIT (whitelist) also skips ``trap``; None: the port runs no client checks
    mail     MAIL FROM: who sends (AUTH, a login window) and whether they may use the address
    relay    RCPT, first: default REJECT -- only a PERMIT in this table lets a recipient out
    trap     RCPT, for clients the client checks did not PERMIT: spam traps (DISCARD)
    rcpt     RCPT, last: the recipient itself (brakes, the reflector, existence, room)
    data     after DATA: whether the message fits where it goes

    HELO has no table: nothing is decided on the HELO name; it is kept for the log.
    """

    connect: Chain
    client: Chain | None
    mail: Chain
    relay: Chain
    trap: Chain
    rcpt: Chain
    data: Chain

    def rows(self) -> list[dict]:
        """The tables as text, for ``mailstack policy show --tables``."""
        stages = ("connect", "client", "mail", "relay", "trap", "rcpt", "data")
        rows = []
        for stage in stages:
            chain = getattr(self, stage)
            checks = " → ".join(chain.names) if chain is not None else "(none)"
            if chain is not None and chain.default_verdict is not Verdict.DUNNO:
                checks += f" → default {chain.default_verdict.value.upper()}"
            rows.append({"stage": stage, "checks": checks or "(none)"})
        return rows
