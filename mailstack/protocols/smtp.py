"""Port 25: the inbound MX for the domains we host, behind the ISP's anti-spam policy.

Why so little here: what the MX allows is policy, and lives in ``policy/mx.py`` (the stage
tables: connect, client, mail, relay, trap, rcpt, data) run by ``policy.port_policy``.
The session is the shared ``esmtp.SMTPSession``; accepted mail goes through
``smtp_intake``.  This module only wires them for a listener; ``build_factory`` and
``register_avatars`` are the only code here that reads the process's parts.

Port 25 relays for nobody unless ``[smtp] mx_relay`` says otherwise ("authenticated":
SMTP AUTH logins; "customers": also customer networks with a live POP-before-SMTP window);
see ``policy/mx.py``.

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1.
Security: no relaying unless ``mx_relay`` allows it; whitelist entries never open relay
(the relay chain defaults to REJECT and holds no whitelist check).
"""

from __future__ import annotations

from mailstack.delivery.routing import MessageRouter
from mailstack.policy import mx
from mailstack.protocols import smtp_auth
from mailstack.protocols.esmtp import SMTPFactory
from mailstack.protocols.smtp_intake import MessageIntake


def register_avatars(parts) -> None:
    smtp_auth.register_avatar(parts.realm)


def build_factory(parts, listener, port_policy=mx.port_policy):
    """The listener's factory around its port's policy (submission passes its own)."""
    config = parts.config
    policy = port_policy(parts.db, parts.clock, parts.resolver, config, parts.warner)
    return SMTPFactory(
        listener, policy,
        authenticator=smtp_auth.Authenticator(parts.portal, parts.tls_requirement,
                                              policy.auth_enabled),
        intake=MessageIntake(MessageRouter(parts), parts.db, parts.clock,
                             config.migration.reflector_local_part),
        settings=config.smtp, hostname=config.server.hostname, clock=parts.clock,
        tls_options=parts.tls_options, limits=parts.limits, spool_dir=parts.spool_dir)
