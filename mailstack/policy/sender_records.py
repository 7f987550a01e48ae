"""The DNS records that let other mail systems trust the mail we send for a domain.

``mailstack dns records`` prints them beside the MX and SRV records, derived from the
same configuration and keys the server uses, so what DNS says is what the server does:

- DKIM: one TXT per selector published at the moment (``dkim/schedule.py``): its key, cut
  into strings of at most 255 octets;
- SPF: ``v=spf1 mx`` (the domain's MX hosts are ours), ``a:`` our host name when it is not
  the MX host (the name we greet with when we send), an ``ip4:``/``ip6:`` for each public
  address an SMTP listener is bound to, ``[dns_records] spf_extra``, then ``-all``;
- DMARC at ``_dmarc``: ``p=`` and ``rua=`` from ``[dns_records]``;
- MTA-STS at ``_mta-sts``: ``id=`` derived from the policy text (``mta_sts_policy``, the
  text the HTTPS listener serves at ``https://mta-sts.<domain>/.well-known/mta-sts.txt``),
  so the id changes exactly when the policy does; its ``mx:`` lines are ``[dns_records]
  mta_sts_mx`` (default: our host name), whatever ``--mx`` says, and an MX host the
  policy does not cover is pointed out in a comment;
- TLS-RPT at ``_smtp._tls``: where reports about our inbound TLS go.

Standards: RFC 6376 §3.6 (DKIM key records), RFC 7208 (SPF), RFC 7489 §6.3 (DMARC),
RFC 8461 §3.1-3.2 (MTA-STS record and policy), RFC 8460 §3 (TLS-RPT record).
"""

from __future__ import annotations

import hashlib
import ipaddress
from datetime import datetime, timedelta

from mailstack import mta_sts
from mailstack.dkim import keys as dkim_keys, schedule

SENDING = ("smtp", "submission")       # listeners whose hosts send (their bound addresses)


def txt(name: str, ttl: int, value: str) -> str:
    return f"{name}\t{ttl}\tIN\tTXT\t{dkim_keys.zone_text(value)}"


def dkim_records(config, domain: str, listed, at: datetime) -> list[str]:
    keep = timedelta(seconds=config.dkim.keep_retired)
    ttl = config.dns_records.ttl
    return [txt(f"{k.selector}._domainkey.{domain}.", ttl, dkim_keys.txt_value(k.algorithm,
                                                                             k.public_key))
            for k in listed if k.domain == domain and schedule.published(k, at, keep)]


def spf(config, mx_host: str) -> str:
    terms = ["v=spf1", "mx"]
    if config.server.hostname.lower() != mx_host.lower():
        terms.append(f"a:{config.server.hostname}")
    for address in dict.fromkeys(l.address for l in config.listeners if l.protocol in SENDING):
        ip = ipaddress.ip_address(address)
        if ip.is_global:
            terms.append(f"ip{ip.version}:{ip.compressed}")
    return " ".join(terms + list(config.dns_records.spf_extra) + ["-all"])


def dmarc(config, domain: str) -> str:
    c = config.dns_records
    rua = f"; rua={c.dmarc_rua.replace('{domain}', domain)}" if c.dmarc_rua else ""
    return f"v=DMARC1; p={c.dmarc_policy}{rua}"


def mta_sts_mx(config) -> tuple[str, ...]:
    """Our MX host names as the policy lists them."""
    hostname = config.client_setup.hostname or config.server.hostname
    return config.dns_records.mta_sts_mx or (hostname,)


def mta_sts_policy(config) -> str:
    """The policy file (RFC 8461 §3.2) for ``https://mta-sts.<domain>/.well-known/mta-sts.txt``:
    the same for every hosted domain (they share our MX hosts)."""
    c = config.dns_records
    return mta_sts.policy_text(c.mta_sts_mode, mta_sts_mx(config), c.mta_sts_max_age)


def mta_sts_id(policy: str) -> str:
    """RFC 8461 §3.1: 1 to 32 letters and digits; here 20 hex digits of the policy's hash."""
    return hashlib.sha256(policy.encode()).hexdigest()[:20]


def tls_rpt(config, domain: str) -> str:
    return f"v=TLSRPTv1; rua={config.dns_records.tls_rpt_rua.replace('{domain}', domain)}"


def records(config, domain: str, mx_host: str, listed, at: datetime) -> list[str]:
    """Every sender-authentication record of ``domain``, as zone-file lines."""
    ttl = config.dns_records.ttl
    lines = dkim_records(config, domain, listed, at)
    lines.append(txt(f"{domain}.", ttl, spf(config, mx_host)))
    lines.append(txt(f"_dmarc.{domain}.", ttl, dmarc(config, domain)))
    if config.dns_records.mta_sts_mode != "none":
        policy = mta_sts_policy(config)
        lines.append(txt(f"_mta-sts.{domain}.", ttl, f"v=STSv1; id={mta_sts_id(policy)}"))
        if not mta_sts.parse_policy(policy).allows(mx_host):
            lines.append(f"; warning: the MX host {mx_host} is not in the MTA-STS policy's "
                         "mx lines ([dns_records] mta_sts_mx): senders enforcing it will "
                         "not deliver there")
    if config.dns_records.tls_rpt_rua:
        lines.append(txt(f"_smtp._tls.{domain}.", ttl, tls_rpt(config, domain)))
    return lines
