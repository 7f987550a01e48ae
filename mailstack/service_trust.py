"""The wiring of mail's trust and what leaves: the outbound queue with its DKIM signer,
MTA-STS policies and TLS reports; SRS for forwarded mail; port 25's message
authentication; rspamd's scanning and learning.

Why beside ``service.py``: ``build`` stays the one wiring point and calls these; each
builds one part from its own configuration section (``config_mail_trust.py``) with
exactly what it uses, and returns None where the section turns the part off.
"""

from __future__ import annotations

from mailstack import clock as clocks
from mailstack.config_sections import Config
from mailstack.delivery.outbound import OutboundQueue
from mailstack.delivery.sts_policies import StsPolicies
from mailstack.delivery.tls_check import TrustAnchors
from mailstack.delivery.tls_report_sender import TLSReportSender
from mailstack.dkim.signer import Signer
from mailstack.policy.authentication import Authenticator
from mailstack.srs import SRS
from mailstack.store import srs_secrets
from mailstack.threads import WorkerPool


def outbound(config: Config, db, clock, reactor, resolver, metrics, root):
    """(signer, queue): the queue runner with the DKIM signer of what leaves and the
    destinations' MTA-STS policies, and the daily TLS reports, all under ``root``."""
    signer = Signer(db, clock, config.dkim.reload_interval)
    sts = _sts_policies(config, db, clock, reactor, resolver)
    queue = OutboundQueue(db, clock, reactor, resolver, config.delivery, config.server.hostname,
                          metrics, signer, sts)
    queue.setServiceParent(root)
    if sts is not None and config.mta_sts.reports:
        TLSReportSender(db, clock, resolver, signer, config.server.hostname,
                        config.mta_sts.report_interval, queue.kick).setServiceParent(root)
    return signer, queue


def _sts_policies(config: Config, db, clock, reactor, resolver) -> StsPolicies | None:
    """Outbound MTA-STS (``[mta_sts]``): the destinations' policies and the CAs their
    hosts must chain to; None when it is off."""
    settings = config.mta_sts
    if not settings.enabled:
        return None
    anchors = TrustAnchors(str(config.path(settings.ca_file)) if settings.ca_file else "", clock)
    return StsPolicies(db, clock, reactor, resolver, settings, anchors)


def srs(config: Config, db, clock) -> SRS:
    """The sender rewriting of forwarded mail: ``[forwarding]``'s secrets, or the one kept
    in the database (made on the first start); a change needs a restart."""
    settings = config.forwarding
    secrets = settings.srs_secrets or db.run_sync(srs_secrets.ensure, clocks.now(clock))
    return SRS(settings.srs_domain or config.server.hostname, secrets,
               settings.srs_max_age_days)


def authenticator(config: Config, resolver, reactor) -> Authenticator | None:
    """Port 25's message checks (``[authentication]``; a change needs a restart); its
    pool starts no thread before the first message."""
    settings = config.authentication
    if not settings.enabled:
        return None
    pool = WorkerPool("authentication", settings.threads, reactor)
    return Authenticator(resolver, reactor, pool, authserv_id=config.server.hostname,
                         public_suffix_list=str(config.path(settings.public_suffix_list))
                         if settings.public_suffix_list else "",
                         max_message_size=settings.max_message_size)


def spam_scanner(config: Config, reactor, metrics):
    """Port 25's rspamd client (``[spam]``; a change needs a restart), or None; its
    module is imported only when scanning is on (submission asks the same client:
    ``Scanner.for_submission``)."""
    settings = config.spam
    if not settings.enabled:
        return None
    from mailstack.policy import rspamd_client, spam_scan
    client = rspamd_client.RspamdClient(reactor, settings.url, settings.timeout)
    return spam_scan.Scanner(client, max_message_size=settings.max_message_size,
                             metrics=metrics)


def spam_learner(config: Config, db, clock, reactor, metrics, root):
    """The learner of the customers' Junk moves (``[spam]`` on and ``learning``; a change
    needs a restart), under ``root``; None when off (COPY and MOVE then queue nothing)."""
    settings = config.spam
    if not (settings.enabled and settings.learning):
        return None
    from mailstack.spam import controller, learning
    client = controller.Controller(reactor, settings.controller_url,
                                   settings.controller_password, settings.timeout)
    learner = learning.Learner(db, clock, client, settings, metrics)
    learner.setServiceParent(root)
    return learner
