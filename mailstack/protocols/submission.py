"""Submission on 587 (STARTTLS) and 465 (implicit TLS): customers sending mail.

Why a separate listener role: RFC 6409 makes submission the place where the sender is
known.  Nothing is accepted from an unknown client: it must log in with SMTP AUTH (when
the feature flag is on) or, for legacy customers, come from an IP with a live
POP-before-SMTP window; after the window's sunset it gets a 530 that says what to change.
An authenticated sender may only use its own addresses.  Recipients elsewhere are queued
for outbound delivery in the same transaction as local copies.  Those rules are the
stage tables in ``policy/submission.py``; this module wires them to a listener.

Standards: RFC 6409, RFC 8314 (implicit TLS on 465), RFC 4954.
Security: see ``smtp_auth`` (no password before TLS after the cutover) and
``policy.auth_window`` (only successful logins open a window).
"""

from __future__ import annotations

from mailstack.policy import submission
from mailstack.protocols import smtp, smtp_auth


def register_avatars(parts) -> None:
    smtp_auth.register_avatar(parts.realm)


def build_factory(parts, listener):
    return smtp.build_factory(parts, listener, submission.port_policy)
