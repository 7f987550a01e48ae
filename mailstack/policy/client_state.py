"""What the policy knows about one connected client, kept by the policy for its session.

Why the policy owns it: the verdict of the client checks is taken at connect and delivered
at the first RCPT (ARCHITECTURE C3), and a spam-trap hit changes it for the rest of the
session.  That state used to be written onto the protocol's session object and read back
by the protocol; now the policy creates a ``ClientState`` at connect, the protocol carries
it unopened in every request (``SMTPRequest.client``), and only the policy changes it.
Checks read the client's DNS facts through it (``ptr``, ``forward_confirmed``), looked
up once per session (``client_facts``).
"""

from __future__ import annotations

from twisted.internet import defer

from mailstack.policy.client_facts import ClientFacts, share
from mailstack.policy.decision import Decision


class ClientState:
    def __init__(self, facts: ClientFacts | None = None):
        self.facts = facts            # None: a client no check asks DNS about
        self._verdict = None          # Deferred Decision of the client chain; None: exempt

    # --- the client checks' verdict -------------------------------------------------------

    @property
    def checked(self) -> bool:
        """False for clients the port runs no client checks on (trusted, submission)."""
        return self._verdict is not None

    def start(self, verdict: defer.Deferred) -> None:
        self._verdict = verdict

    def verdict(self) -> defer.Deferred:
        """A Deferred of the client chain's Decision (each caller gets its own)."""
        return share(self._verdict)

    def condemn(self, decision: Decision) -> None:
        """From now on the client's verdict is ``decision`` (a spam-trap hit blocks it)."""
        self._verdict = defer.succeed(decision)

    # --- DNS facts, for checks and the rejection log ----------------------------------------

    def ptr(self):
        return self.facts.ptr()

    def forward_confirmed(self):
        return self.facts.forward_confirmed()

    @property
    def ptr_name(self) -> str | None:
        return self.facts.ptr_name if self.facts is not None else None

    @property
    def verified_name(self) -> str | None:
        return self.facts.verified_name if self.facts is not None else None
