"""The server settings we tell mail programs, as the policy in force dictates.

Why derived from the phases: after the TLS cutover a client must not be steered to a port
where it would first talk in the clear, so only implicit-TLS services are advertised
(RFC 8314 §5.1); before it, the STARTTLS ports are offered as fallbacks.  Autoconfig,
Autodiscover and ``mailstack dns records`` all read this one list, so they never disagree.

Standards: RFC 6186 and RFC 8314 (SRV names), Thunderbird autoconfig 1.1, Outlook POX
Autodiscover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mailstack.policy.phases import in_force


@dataclass(frozen=True)
class Service:
    kind: str          # imap | pop3 | smtp
    srv: str           # _imaps._tcp …
    port: int
    socket: str        # SSL | STARTTLS
    offered: bool      # False: not offered in this phase (SRV target ".")


def services(config, at: datetime) -> list[Service]:
    c = config.client_setup
    plain_ok = not in_force(config, at).tls_required
    return [
        Service("imap", "_imaps._tcp", c.imaps_port, "SSL", True),
        Service("pop3", "_pop3s._tcp", c.pop3s_port, "SSL", True),
        Service("smtp", "_submissions._tcp", c.submissions_port, "SSL", True),
        Service("imap", "_imap._tcp", c.imap_port, "STARTTLS", plain_ok),
        Service("pop3", "_pop3._tcp", c.pop3_port, "STARTTLS", plain_ok),
        Service("smtp", "_submission._tcp", c.submission_port, "STARTTLS", plain_ok),
    ]


def hostname(config) -> str:
    return config.client_setup.hostname or config.server.hostname


def zone_records(config, domain: str, at: datetime, mx_host: str | None = None) -> list[str]:
    """The zone-file lines an operator publishes for ``domain``."""
    host = hostname(config) + "."
    mx = (mx_host or hostname(config)) + "."
    lines = [f"{domain}.\t3600\tIN\tMX\t10 {mx}"]
    for s in services(config, at):
        target = f"0 1 {s.port} {host}" if s.offered else "0 0 0 ."
        lines.append(f"{s.srv}.{domain}.\t3600\tIN\tSRV\t{target}")
    lines += [f"autoconfig.{domain}.\t3600\tIN\tCNAME\t{host}",
              f"autodiscover.{domain}.\t3600\tIN\tCNAME\t{host}",
              f"_autodiscover._tcp.{domain}.\t3600\tIN\tSRV\t0 0 {config.client_setup.https_port} {host}"]
    return lines
