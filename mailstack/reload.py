"""Reload without restart: SIGHUP (or ``mailstack reload``) applies a re-read configuration.

Why: an ISP renews its certificate every 60-90 days and changes DNSBLs, limits and phase
dates far more often than it restarts; a restart drops every IMAP IDLE and POP3 session.
What a running process can take over safely is applied to NEW connections only -- a session
keeps the settings and the policy it started with, as Postfix's ``reload`` and Dovecot's
``doveadm reload`` do:

- the certificate and key files are read again (``tls.ReloadableServerTLS``), whatever
  else changed: the next connection or STARTTLS gets the new certificate;
- ``[antispam]``, ``[migration]``, ``[pop_before_smtp]``, ``[submission]``, ``[smtp]``: each
  SMTP listener gets a new port policy built from its stage tables (``policy/mx.py``,
  ``policy/submission.py``), so DNSBLs, traps, phase dates and relay rules follow;
- ``[pop3]``, ``[imap]``, ``[sieve]``: the timeouts (and script limits) new sessions get; ``[limits]``: connection limits.

Every other section (listeners, database, server, auth, dns, delivery, …) needs a restart:
a change there is named in the log and left as it was.  A file that does not load leaves
everything as it was.

Security: the new certificate is loaded before it replaces the old one, so a bad file
never leaves a listener without a certificate.
"""

from __future__ import annotations

import dataclasses

from twisted.logger import Logger

from mailstack import tls
from mailstack.config_sections import Config
from mailstack.metrics import NO_METRICS
from mailstack.policy import mx, submission

log = Logger(namespace="mailstack.reload")

APPLIED = ("antispam", "migration", "pop_before_smtp", "submission", "smtp", "pop3", "imap",
           "sieve", "limits", "tls")
PORT_TABLES = {"smtp": mx, "submission": submission}


class Reloader:
    """Applies a configuration to the running listeners; built once by ``service.build``."""

    def __init__(self, config: Config, listeners, server_tls, limits, *, db, clock, resolver,
                 warner, metrics=NO_METRICS, authenticator=None, srs=None, spam_scanner=None):
        self.config, self.listeners, self.server_tls, self.limits = (
            config, listeners, server_tls, limits)
        self.authenticator = authenticator     # port 25's message checks, built once
        self.srs = srs                         # the SRS of forwarded mail, built once
        self.spam_scanner = spam_scanner       # port 25's rspamd client, built once
        self.db, self.clock, self.resolver, self.warner = db, clock, resolver, warner
        self.metrics = metrics      # a new port policy counts its refusals as the old one did

    def apply(self, new: Config) -> list[str]:
        """Take over what can be taken over; the sections that need a restart."""
        restart = [f.name for f in dataclasses.fields(Config)
                   if f.name not in APPLIED and f.name != "base_dir"
                   and getattr(new, f.name) != getattr(self.config, f.name)]
        for section in restart:
            log.warn("reload: [{section}] changed and needs a restart; left as it was",
                     section=section)
        config = dataclasses.replace(self.config, **{s: getattr(new, s) for s in APPLIED})
        self._certificate(config)
        for listener in self.listeners:
            self._listener(listener.listener.protocol, listener.factory, config)
        self.limits.reconfigure(config.limits)
        self.config = config
        log.info("reload: configuration applied to new connections")
        return restart

    def _certificate(self, config: Config) -> None:
        if self.server_tls is None:
            return
        t = config.tls
        try:
            options = tls.server_options(config.path(t.certificate), config.path(t.private_key))
        except (OSError, ValueError) as e:
            log.error("reload: certificate not replaced: {error}", error=str(e))
            return
        self.server_tls.replace(options)

    def _listener(self, protocol: str, factory, config: Config) -> None:
        if protocol in PORT_TABLES:
            factory.policy = PORT_TABLES[protocol].port_policy(
                self.db, self.clock, self.resolver, config, self.warner, self.metrics,
                authenticator=self.authenticator, srs=self.srs,
                spam_scanner=self.spam_scanner)
            factory.settings = config.smtp
        elif protocol in ("pop3", "imap", "sieve"):
            factory.settings = getattr(config, protocol)
