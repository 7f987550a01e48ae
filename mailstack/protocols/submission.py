"""Submission on 587 (STARTTLS) and 465 (implicit TLS): customers sending mail.

Why a separate listener role: RFC 6409 makes submission the place where the sender is
known.  Nothing is accepted from an unknown client: it must log in with SMTP AUTH (when
the feature flag is on) or, for legacy customers, come from an IP with a live
POP-before-SMTP window; after the window's sunset it gets a 530 that says what to change.
An authenticated sender may only use its own addresses.  Recipients elsewhere are queued
for outbound delivery in the same transaction as local copies.

Standards: RFC 6409, RFC 8314 (implicit TLS on 465), RFC 4954.
Security: see ``smtp_auth`` (no password before TLS after the cutover) and
``policy.auth_window`` (only successful logins open a window).
"""

from __future__ import annotations

from mailstack.policy import auth_window, relay, sender_rules
from mailstack.protocols import smtp_auth
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.protocols.smtp import InboundPolicy


class SubmissionPolicy(InboundPolicy):
    antispam = False   # customers who log in are exempt: roaming on listed networks is normal

    def __init__(self, parts):
        super().__init__(parts, auth_enabled=parts.config.submission.smtp_auth)

    def sender_checks(self):
        config = self.parts.config
        window = auth_window.PopBeforeSMTP(self.parts.db, self.parts.clock,
                                           config.pop_before_smtp, config.submission.help_url)
        return [window, sender_rules.OwnAddressesOnly(self.parts.db)]

    def relay_checks(self):
        return [relay.HostedDomainsOnly()]   # OP25B is about port 25 only


def register_avatars(parts) -> None:
    smtp_auth.register_avatar(parts.realm)


def build_factory(parts, listener):
    return SMTPFactory(parts, listener, SubmissionPolicy(parts))
