"""The contract between an SMTP session and its port's policy.

Why declared: the session (``protocols/esmtp.py`` and its mix-ins) and the policy
(``port_policy.PortPolicy`` running a port's tables) meet only here.  The session builds an
``SMTPRequest`` from what it saw, asks, and sends the ``Outcome``'s reply; it never
compares addresses, IPs or sizes itself and never opens the ``ClientState`` it carries.
The policy never touches the session.  Unit tests give the session a double of this
Protocol (tests/support/policy_doubles.py) and the policy plain requests.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from twisted.internet.defer import Deferred

from mailstack.policy.request import SMTPRequest


@runtime_checkable
class SMTPPolicy(Protocol):
    auth_enabled: bool       # whether this port offers SMTP AUTH at all (the feature flag)

    def postmaster_domain(self) -> str:
        """The domain an unqualified ``RCPT TO:<postmaster>`` means (RFC 5321 §4.5.1)."""

    def connect(self, request: SMTPRequest) -> Deferred:
        """Outcome: ``close`` to drop the client unanswered (firewall) or after ``reply``;
        otherwise ``client``, the ClientState every later request of the session carries."""

    def mail(self, request: SMTPRequest) -> Deferred:
        """Outcome of MAIL FROM: a refusal, or ``sender``: who sends (AUTH, a login window)."""

    def rcpt(self, request: SMTPRequest) -> Deferred:
        """Outcome of RCPT TO: a refusal, or the ``accepted`` recipient."""

    def data(self, request: SMTPRequest) -> Deferred:
        """Outcome after DATA (``request.size`` known): a refusal of the whole message, or
        the ``undeliverable`` recipients it does not fit (bounced, the rest stored)."""

    def after_delivery(self, request: SMTPRequest, spool) -> Deferred:
        """What the policy learns from a stored message (a spam report); fires with None."""
