"""Port 25, the MX: its stage tables, the one place that says what the MX allows and in
which order.

Read top to bottom, the tables answer the questions an operator and the support desk ask:

- *Does a whitelisted IP skip the DNSBL?*  Yes: ``whitelist`` is first in ``client`` and
  its PERMIT ends that chain, so the block list, the DNSBLs and reverse DNS are never asked;
  a PERMIT also skips ``trap``.  Trusted networks skip the client checks altogether.
- *Can a whitelisted IP open relay?*  No: ``relay`` holds no whitelist check and ends in
  REJECT; only ``hosted-domain`` (mail for us) and, when ``[smtp] mx_relay`` allows it,
  ``proven-sender`` can PERMIT.
- *Who relays on port 25?*  ``mx_relay = "never"`` (the default): nobody, and a
  POP-before-SMTP window counts for nothing here.  ``"authenticated"``: customers who log in
  with SMTP AUTH (offered after STARTTLS).  ``"customers"``: those, and also clients on
  ``[migration] customer_networks`` with a live POP-before-SMTP window (``auth_window``
  says when it closes) -- what a legacy ISP may want until OP25B; ``op25b`` is first in
  ``relay`` so a customer network's phase still blocks it.
- *What happens to a message that fails DMARC?*  With ``[authentication] enabled`` (the
  default) each message is checked after DATA (``authentication.py``: SPF, DKIM, ARC,
  DMARC), then ``data`` runs: ``dmarc`` refuses a ``p=reject`` failure with 550 5.7.1 and a
  ref, unless the client was whitelisted (its client verdict is a PERMIT), is a trusted
  network, or the message was ARC-sealed by a trusted forwarder; ``p=quarantine`` is
  delivered to Junk; a DNS failure is never a 5xx.
- *Can a bounce address of forwarded mail (SRS) relay?*  Only with a valid hash and day
  (``srs`` in ``relay``, before ``hosted-domain``): it then goes to the address it stands
  for; a forged or expired one is 550 5.1.1.  After DATA, a non-null sender may send it
  only a DSN (``srs-bounces-only``), and a message to be forwarded with more than
  ``[forwarding] max_hops`` Received fields is a loop (``hops``, 554 5.4.6).
- *Is the content scanned?*  With ``[spam] enabled`` (off by default) each message from a
  client that did not log in and is not on a trusted network is scanned by rspamd after
  authentication (``spam_scan.py``); ``spam`` is last in ``data``: rspamd's ``reject`` is
  550 5.7.1 with a ref, ``soft reject`` 451 4.7.1, unless the client is whitelisted;
  rspamd down or slow: delivered, marked unchecked, never a 5xx.
- *When is a refusal at connect sent?*  Only the firewall acts before the banner; what
  ``client`` decides is delivered at the first RCPT, after ``relay``, so the rejection log
  carries From and To (ARCHITECTURE C3).

Standards: RFC 5321 (MX role), RFC 5598 §4.3.1, RFC 2505, RFC 7489 §6.7 (DMARC policy).
Security: default REJECT on relay; the whitelist is in no relay table; port-25 relaying is
an explicit setting, default off.
"""

from __future__ import annotations

from mailstack.policy import (
    auth_window, blocklist, containment, dmarc, dnsbl, forwarding, harvest, op25b, quota, rdns,
    recipients, reflector, relay, reports, sender_rules, spam_scan, spamtrap, whitelist,
)
from mailstack.metrics import NO_METRICS
from mailstack.policy.port_policy import PortPolicy
from mailstack.policy.rejection_log import RejectionLog
from mailstack.policy.stages import Chain, Tables

MX_RELAY = ("never", "authenticated", "customers")


def relays_for(mx_relay: str) -> str:
    """Who port 25 relays for, in words (``mailstack policy show``)."""
    return {"never": "nobody",
            "authenticated": "customers who log in with SMTP AUTH",
            "customers": "customers who log in with SMTP AUTH, and customer networks "
                         "with a live POP-before-SMTP window"}[mx_relay]


def offers_auth(mx_relay: str, smtp_auth: bool) -> bool:
    """Port 25 offers AUTH only where a login can relay, and only with the feature flag."""
    return smtp_auth and mx_relay != "never"


def tables(db, clock, resolver, *, antispam, migration, pop_before_smtp, help_url: str,
           recipients_per_hour: int, mx_relay: str, metrics=NO_METRICS,
           authentication=None, srs=None, max_hops: int = 100, spam=None) -> Tables:
    listed = whitelist.Whitelisted(db, antispam.trusted_networks)
    blocker = blocklist.Blocker(antispam)
    client = [listed,
              blocklist.LocallyBlocked(db, clock),
              dnsbl.Listed(resolver, antispam.dnsbl, clock, tempfail=antispam.dnsbl_tempfail,
                           metrics=metrics)]
    if antispam.require_ptr:
        client.append(rdns.HasReverseDNS(antispam.forward_confirmed_ptr))
    mail = [sender_rules.OwnAddressesOnly(db)]
    if mx_relay == "customers":
        customers = op25b.Phases(migration)
        mail.insert(0, auth_window.PopBeforeSMTP(
            db, clock, pop_before_smtp, help_url, required=False,
            applies_to=customers.is_customer))
    relaying = [op25b.OutboundPort25Blocked(migration, clock, help_url),
                forwarding.BounceAddress(srs, clock), relay.HostedDomain()]
    if mx_relay != "never":
        relaying.append(relay.ProvenSender())
    return Tables(
        connect=Chain("connect", [whitelist.TrustedNetwork(listed),
                                  blocklist.Firewalled(db, clock, listed)]),
        client=Chain("client", client),
        mail=Chain("mail", mail),
        relay=Chain("relay", relaying, default=relay.denied),
        trap=Chain("trap", [spamtrap.SpamTrap(db, clock, antispam.spam_traps, blocker)]),
        rcpt=Chain("rcpt", [containment.RecipientsPerHour(db, clock, recipients_per_hour),
                            reflector.Reflector(migration.reflector_local_part),
                            recipients.LocalRecipientExists()]),
        data=Chain("data", [quota.FitsMailbox(), forwarding.HopLimit(max_hops),
                            forwarding.BouncesOnly(srs), *_enforced(authentication),
                            *([spam_scan.Refused(db)] if spam is not None and spam.enabled
                              else [])]),
    )


def _enforced(authentication) -> list:
    """The DMARC check of the data table, when ``[authentication]`` is on."""
    if authentication is None or not authentication.enabled:
        return []
    return [dmarc.Enforced(authentication.dns_failure == "defer",
                           authentication.trusted_forwarders)]


def postmaster_domain(config) -> str:
    hosted = config.domains.hosted
    return hosted[0] if hosted else config.server.hostname


def port_policy(db, clock, resolver, config, warner=None, metrics=NO_METRICS,
                authenticator=None, srs=None, spam_scanner=None) -> PortPolicy:
    """Port 25's policy: these tables, run by ``PortPolicy`` with what it needs;
    ``authenticator`` (``authentication.Authenticator``) verifies each message when
    ``[authentication] enabled``; ``srs`` (``srs.SRS``, built by the wiring with its
    secret) checks and routes the bounce addresses of forwarded mail (None: none is ours);
    ``spam_scanner`` (``spam_scan.Scanner``) asks rspamd when ``[spam] enabled``."""
    antispam, hostname = config.antispam, config.server.hostname
    if not config.authentication.enabled:
        authenticator = None
    if not config.spam.enabled:
        spam_scanner = None
    blocker = blocklist.Blocker(antispam)
    return PortPolicy(
        tables(db, clock, resolver, antispam=antispam, migration=config.migration,
               pop_before_smtp=config.pop_before_smtp, help_url=config.submission.help_url,
               recipients_per_hour=config.submission.recipients_per_hour,
               mx_relay=config.smtp.mx_relay, metrics=metrics,
               authentication=config.authentication, srs=srs,
               max_hops=config.forwarding.max_hops, spam=config.spam),
        db=db, resolver=resolver, rejections=RejectionLog(db, clock, metrics),
        harvest_watch=harvest.HarvestWatch(db, clock, antispam, blocker),
        reports=reports.ReportAddress(db, clock, antispam, blocker, hostname),
        warner=warner, hostname=hostname, postmaster_domain=postmaster_domain(config),
        auth_enabled=offers_auth(config.smtp.mx_relay, config.submission.smtp_auth),
        authenticator=authenticator, spam_scanner=spam_scanner)
