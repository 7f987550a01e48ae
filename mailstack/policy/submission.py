"""Submission (587 STARTTLS, 465 implicit TLS): its stage tables.

Read top to bottom:

- *Who may send?*  Whoever logged in with SMTP AUTH (when ``[submission] smtp_auth`` is on),
  or, for legacy customers, a client whose IP has a live POP-before-SMTP window
  (``auth_window``: the window is ``[pop_before_smtp] window`` seconds after the last
  successful POP/IMAP login from that same IP, and no window counts after ``sunset``, when
  the client gets a 530 that says what to change).  Anyone else gets 530 at MAIL.
- *As whom?*  An authenticated sender only as one of their own addresses
  (``sender-ownership``).
- *To whom?*  Anywhere, once proven (``relay``: default REJECT, ``proven-sender`` PERMITs);
  within ``recipients-per-hour``.
- *Anti-spam?*  No checks of the client: customers who log in are exempt, roaming on
  listed networks is normal; so ``connect`` (no firewall) and ``trap`` are empty and there
  is no ``client`` table.  OP25B is about port 25 only.  The *content* is scanned only
  with ``[spam] enabled`` and ``submission`` (off by default): rspamd is told the
  customer's account (``User``); ``spam-outbound``, last in ``data``, refuses a message
  scoring at or above ``submission_threshold`` (550 5.7.1 with a ref); below it, or
  rspamd down, the message is sent unchanged (``spam_outbound.py``).

Standards: RFC 6409, RFC 8314, RFC 4954.
Security: nothing is accepted from a client that has not proven who it is; only successful
logins open a window (``auth_window``).
"""

from __future__ import annotations

from mailstack.policy import (
    auth_window, blocklist, containment, quota, recipients, reflector, relay, reports,
    sender_rules, spam_outbound,
)
from mailstack.metrics import NO_METRICS
from mailstack.policy.mx import postmaster_domain
from mailstack.policy.port_policy import PortPolicy
from mailstack.policy.rejection_log import RejectionLog
from mailstack.policy.stages import Chain, Tables


def tables(db, clock, *, migration, pop_before_smtp, help_url: str,
           recipients_per_hour: int, spam=None) -> Tables:
    return Tables(
        connect=Chain("connect", []),
        client=None,
        mail=Chain("mail", [auth_window.PopBeforeSMTP(db, clock, pop_before_smtp, help_url),
                            sender_rules.OwnAddressesOnly(db)]),
        relay=Chain("relay", [relay.HostedDomain(), relay.ProvenSender()], default=relay.denied),
        trap=Chain("trap", []),
        rcpt=Chain("rcpt", [containment.RecipientsPerHour(db, clock, recipients_per_hour),
                            reflector.Reflector(migration.reflector_local_part),
                            recipients.LocalRecipientExists()]),
        data=Chain("data", [quota.FitsMailbox(), *_scanned(spam)]),
    )


def _scanned(spam) -> list:
    """The outbound content check, with ``[spam] enabled`` and ``submission``."""
    if spam is None or not (spam.enabled and spam.submission):
        return []
    return [spam_outbound.TooSpammy(spam.submission_threshold)]


def port_policy(db, clock, resolver, config, warner=None, metrics=NO_METRICS,
                authenticator=None, srs=None, spam_scanner=None) -> PortPolicy:
    """Submission's policy: these tables, run by ``PortPolicy``.  ``authenticator`` is
    ignored: submitted mail is our customers', never verified here (issue 17); so is
    ``srs``: bounces come to port 25.  ``spam_scanner`` (port 25's) asks the same rspamd
    about submitted mail with ``[spam] submission`` (``Scanner.for_submission``)."""
    antispam, hostname = config.antispam, config.server.hostname
    scans = spam_scanner is not None and config.spam.enabled and config.spam.submission
    # the table shows spam-outbound when configured (``policy show --tables``: no scanner)
    return PortPolicy(
        tables(db, clock, migration=config.migration, pop_before_smtp=config.pop_before_smtp,
               help_url=config.submission.help_url,
               recipients_per_hour=config.submission.recipients_per_hour,
               spam=config.spam),
        db=db, resolver=resolver, rejections=RejectionLog(db, clock, metrics),
        reports=reports.ReportAddress(db, clock, antispam, blocklist.Blocker(antispam), hostname),
        warner=warner, hostname=hostname, postmaster_domain=postmaster_domain(config),
        auth_enabled=config.submission.smtp_auth,
        spam_scanner=spam_scanner.for_submission() if scans else None)
