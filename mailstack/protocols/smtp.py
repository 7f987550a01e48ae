"""Port 25: the inbound MX for the domains we host, behind the ISP's anti-spam policy.

Why so little here: what the MX allows is policy, and lives in ``policy/mx.py`` (the stage
tables: connect, client, mail, relay, trap, rcpt, data) run by ``policy.port_policy``.
The session is the shared ``esmtp.SMTPSession``; accepted mail goes through
``smtp_intake``.  This module only puts them together for a listener, from what
``service.py`` gives it; port 25 and submission (587/465) differ only in the port policy
passed in (``policy/mx.py`` or ``policy/submission.py``).

Port 25 relays for nobody unless ``[smtp] mx_relay`` says otherwise ("authenticated":
SMTP AUTH logins; "customers": also customer networks with a live POP-before-SMTP window);
see ``policy/mx.py``.

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1.
Security: no relaying unless ``mx_relay`` allows it; whitelist entries never open relay
(the relay chain defaults to REJECT and holds no whitelist check).
"""

from __future__ import annotations

from mailstack.delivery.routing import MessageRouter
from mailstack.metrics import NO_METRICS
from mailstack.protocols import smtp_auth
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.protocols.smtp_intake import MessageIntake


def register_avatars(realm) -> None:
    """What an SMTP AUTH login yields, on port 25 and submission alike."""
    smtp_auth.register_avatar(realm)


def build_factory(listener, policy, *, router: MessageRouter, db, clock, portal,
                  tls_requirement, settings, reflector_local_part: str, hostname: str,
                  tls_options, limits, spool_dir, metrics=NO_METRICS):
    """The listener's factory around its port's policy (``mx`` or ``submission``)."""
    return SMTPFactory(
        listener, policy,
        authenticator=smtp_auth.Authenticator(portal, tls_requirement, policy.auth_enabled),
        intake=MessageIntake(router, db, clock, reflector_local_part),
        settings=settings, hostname=hostname, clock=clock, tls_options=tls_options,
        limits=limits, spool_dir=spool_dir, metrics=metrics)
