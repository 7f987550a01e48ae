"""Our resolver, asked from a verification thread: what dkimpy and pyspf call for DNS.

Why a bridge: dkimpy (DKIM, ARC) and pyspf (SPF) are synchronous and query DNS while they
work, through dnspython by default -- a second resolver with its own configuration,
timeouts and no knowledge of ``[dns] nameservers``.  They run in a worker thread
(``authentication.Authenticator``) and every lookup they make comes here: an answer the
resolver still holds is read from its cache in the thread (a dict read, no trip to the
reactor); anything else is asked of ``dns.Resolver`` on the reactor thread
(``callFromThread``) and the thread waits for the answer -- at most twice the resolver's
timeout and a second: not ``blockingCallFromThread``, whose unbounded wait would deadlock
a shutdown that joins this pool while the reactor no longer answers.
Cheaper than resolving everything up front: SPF's lookups depend on the records it reads
(include:, redirect=, mx, a), so they cannot be known before the evaluation starts.

A failure to ask is ``DNSTempFail``, an exception the libraries do not catch as one of
their own (dkimpy turns its own ``DnsTimeoutError`` into a plain "fail"), so the caller
sees it and records ``temperror`` (RFC 8601 §2.7.1), never ``fail``.

Standards: RFC 7208 §4.4 and §5 (what SPF asks), RFC 6376 §3.6.2.2 (the key record),
RFC 7489 §6.6.3 (policy discovery).
Security: the answers are what ``dns.Resolver`` returns (no DNSSEC); names come from the
message or the client and are encoded as IDNA or refused there, never sent raw.
"""

from __future__ import annotations

import queue

from mailstack.dns import Found, NotFound, TempFail


class DNSTempFail(Exception):
    """A lookup that could not be made: the check's result is temperror."""


class BlockingDNS:
    """``resolver``'s lookups for code running in a worker thread (never the reactor's)."""

    def __init__(self, resolver, reactor):
        self.resolver, self.reactor = resolver, reactor
        self.missing: set[str] = set()     # names asked that do not exist (DKIM: no key)

    def records(self, name: str, kind: str) -> list:
        """The answers, [] when there are none; raises ``DNSTempFail``."""
        outcome = self.resolver.cached(name, kind)
        if outcome is None:
            outcome = self._ask(name, kind)
        if isinstance(outcome, Found):
            return outcome.value
        if isinstance(outcome, TempFail):
            raise DNSTempFail(f"{kind} {name}: {outcome.reason}")
        if isinstance(outcome, NotFound):
            self.missing.add(name.lower().rstrip("."))
        return []

    def _ask(self, name: str, kind: str):
        """The resolver's Outcome, asked on the reactor thread; TempFail if it does not
        come in time (the reactor stopping, or stopped)."""
        answer: queue.Queue = queue.Queue(1)

        def ask():
            self.resolver.records(name, kind).addBoth(answer.put)
        self.reactor.callFromThread(ask)
        try:
            outcome = answer.get(timeout=self.resolver.timeout * 2 + 1)
        except queue.Empty:
            return TempFail("no answer from the reactor")
        return outcome if isinstance(outcome, (Found, NotFound, TempFail)) else TempFail("error")

    def txt(self, name: str) -> list[bytes]:
        return self.records(name, "TXT")

    def dkim_txt(self, name, timeout=None):
        """dkimpy's ``dnsfunc``: the first TXT record of ``name`` (bytes), or None."""
        if isinstance(name, bytes):
            name = name.decode("ascii", "replace")
        answers = self.txt(name.rstrip("."))
        return answers[0] if answers else None
