"""The one gate for "no password crosses the wire in the clear", used by every protocol.

Why one gate: SMTP AUTH, POP3 USER/PASS and AUTH, and IMAP LOGIN/AUTHENTICATE must agree on
when a cleartext password is refused, or a customer is told different things by different
clients.  Until the configured cutover, cleartext logins are allowed (legacy clients are
still being migrated) and every one is recorded with ``tls=False`` by the realm; from the
cutover on they are refused before the password is even read.

Standards: RFC 3501 §6.2.3 (LOGINDISABLED), RFC 2595 §2, RFC 4954 §4 (538 5.7.11).
Security: with no cutover configured the protocols still refuse AUTH PLAIN in SMTP before
TLS; this gate decides only for the legacy plaintext paths.
"""

from __future__ import annotations

from datetime import datetime

from mailstack import clock as clocks


class TLSRequirement:
    def __init__(self, clock, cutover: datetime | None = None):
        self.clock = clock
        self.cutover = cutover

    def allows_plaintext(self) -> bool:
        """True while a password may still be sent without TLS."""
        return self.cutover is None or clocks.now(self.clock) < self.cutover
