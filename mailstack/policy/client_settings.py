"""The server settings we tell mail programs, as the policy in force dictates.

Why derived from the phases: after the TLS cutover a client must not be steered to a port
where it would first talk in the clear, so only implicit-TLS services are advertised
(RFC 8314 §5.1); before it, the STARTTLS ports are offered as fallbacks.  Autoconfig,
Autodiscover and ``mailstack dns records`` all read this one list, so they never disagree.
The outgoing server's authentication follows the SMTP AUTH flag: telling a client to log
in where the server offers no AUTH would break its sending, so while only POP-before-SMTP
is on we say so (Thunderbird's ``smtp-after-pop``, Outlook's ``SMTPLast``).

ManageSieve's SRV record (``sieve_services``) is published by ``dns records`` only.

The sender-authentication records (DKIM, SPF, DMARC, MTA-STS, TLS-RPT) are
``sender_records``'.

Standards: RFC 6186 and RFC 8314 (SRV names), RFC 5804 §1.8 (``_sieve._tcp``), Thunderbird autoconfig 1.1, Outlook POX
Autodiscover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstack.policy import sender_records
from mailstack.policy.phases import in_force


@dataclass(frozen=True)
class Service:
    kind: str          # imap | pop3 | smtp | sieve
    srv: str           # _imaps._tcp …
    port: int
    socket: str        # SSL | STARTTLS
    offered: bool      # False: not offered in this phase (SRV target ".")
    auth: str          # password-cleartext | smtp-after-pop | client-IP-address (autoconfig names)
    priority: int = 0  # SRV priority: lower is preferred

    @property
    def password(self) -> bool:
        return self.auth == "password-cleartext"


def services(config, at: datetime) -> list[Service]:
    c = config.client_setup
    phases = in_force(config, at)
    plain_ok = not phases.tls_required
    login, sending = "password-cleartext", _sending_auth(phases)
    # SRV priorities state our preference: implicit TLS before STARTTLS (RFC 8314 §5.1),
    # IMAP before POP3 (RFC 6186 §3.4: a client that speaks both compares them).
    return [
        Service("imap", "_imaps._tcp", c.imaps_port, "SSL", True, login, 0),
        Service("pop3", "_pop3s._tcp", c.pop3s_port, "SSL", True, login, 20),
        Service("smtp", "_submissions._tcp", c.submissions_port, "SSL", True, sending, 0),
        Service("imap", "_imap._tcp", c.imap_port, "STARTTLS", plain_ok, login, 10),
        Service("pop3", "_pop3._tcp", c.pop3_port, "STARTTLS", plain_ok, login, 30),
        Service("smtp", "_submission._tcp", c.submission_port, "STARTTLS", plain_ok, sending, 10),
    ]


def sieve_services(config) -> list[Service]:
    """ManageSieve (RFC 5804 §1.8: ``_sieve._tcp``), where a ``sieve`` listener runs.

    Published only by ``dns records``: neither Thunderbird's autoconfig nor Outlook's
    Autodiscover has an element for it (an unknown ``incomingServer`` type breaks some
    clients).  It has no implicit-TLS port, so it stays offered after the TLS cutover;
    the server refuses a password there before STARTTLS (``policy.tls_required``)."""
    if not any(listener.protocol == "sieve" for listener in config.listeners):
        return []
    return [Service("sieve", "_sieve._tcp", config.client_setup.sieve_port, "STARTTLS", True,
                    "password-cleartext", 0)]


def _sending_auth(phases) -> str:
    if phases.smtp_auth:
        return "password-cleartext"
    if phases.pop_before_smtp == "open":
        return "smtp-after-pop"
    return "client-IP-address"    # neither: only the trusted networks may send


def hostname(config) -> str:
    return config.client_setup.hostname or config.server.hostname


def zone_records(config, domain: str, at: datetime, mx_host: str | None = None,
                 dkim_keys=()) -> list[str]:
    """The zone-file lines an operator publishes for ``domain``; ``dkim_keys``, the
    domain's keys as listed by the store, for the DKIM records published at ``at``."""
    host = hostname(config) + "."
    mx = (mx_host or hostname(config)) + "."
    lines = [f"{domain}.\t3600\tIN\tMX\t10 {mx}"]
    for s in services(config, at) + sieve_services(config):
        target = f"{s.priority} 1 {s.port} {host}" if s.offered else "0 0 0 ."
        lines.append(f"{s.srv}.{domain}.\t3600\tIN\tSRV\t{target}")
    lines += [f"autoconfig.{domain}.\t3600\tIN\tCNAME\t{host}",
              f"autodiscover.{domain}.\t3600\tIN\tCNAME\t{host}",
              f"_autodiscover._tcp.{domain}.\t3600\tIN\tSRV\t0 0 {config.client_setup.https_port} {host}"]
    return lines + sender_records.records(config, domain, mx[:-1], dkim_keys, at)
