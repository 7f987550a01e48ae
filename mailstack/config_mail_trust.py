"""The settings of mail's trust: what signs what we send, what we publish for it, and
what port 25 checks of what it receives -- ``[dkim]``, ``[dns_records]``, ``[authentication]``,
``[mta_sts]``, ``[forwarding]`` and ``[spam]`` (issues 17 and 18).

Why a module of its own: the sections of ``config_sections`` outgrew one screenful of
reading (ARCHITECTURE C2); these six belong together (each is about proving mail genuine
or judging it) and ``config_sections.Config`` holds them like every other section.
Every setting is documented once, in ``docs/configuration.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstack.config_checks import (at_most, domain_name, http_url, mailto_uri, mx_pattern,
                                     not_negative, one_of, port_number, positive, setting,
                                     spf_term, srs_secret)


@dataclass(frozen=True)
class DKIMConfig:
    """DKIM keys (dkim/schedule.py): a rotation's new keys sign ``rotation_delay`` seconds
    after ``dkim rotate``; a retired key stays in DNS ``keep_retired`` seconds more."""

    rotation_delay: int = setting(3 * 86400, not_negative)
    keep_retired: int = setting(7 * 86400, not_negative)
    reload_interval: float = setting(60.0, positive)   # the server's reads of the keys


@dataclass(frozen=True)
class MTASTSConfig:
    """Outbound MTA-STS (RFC 8461, delivery/mta_sts.py) and TLS reports (RFC 8460,
    delivery/tls_reports.py): what the queue asks of the domains it delivers to."""

    enabled: bool = True
    # PEM file of the CAs that MX and policy-host certificates must chain to; "" = the
    # system's store (PKIX, as RFC 8461 §4.2 asks).  Tests name their own CA.
    ca_file: str = ""
    https_port: int = setting(443, port_number)    # of mta-sts.<domain> (tests: loopback)
    fetch_timeout: float = setting(60.0, positive)   # RFC 8461 §3.3 suggests one minute
    reports: bool = True                 # send TLS-RPT reports to the published mailto: rua
    report_interval: int = setting(3600, positive)   # how often finished days are looked for


@dataclass(frozen=True)
class ForwardingConfig:
    """Aliases that forward to remote addresses (srs.py, delivery/routing.py): the copy
    leaves with its sender rewritten by SRS into ``srs_domain``; bounces come back there."""

    # The domain of the rewritten senders; "" = [server] hostname.  It must publish an SPF
    # record that allows our outbound addresses, and its MX must be this server.
    srs_domain: str = setting("", lambda v: v and domain_name(v))
    # HMAC secrets: the first signs, every one verifies (add a new one in front to rotate).
    # Empty: one is made on the first start and kept in the database (srs_secrets).
    srs_secrets: tuple[str, ...] = setting(factory=tuple, each=srs_secret)
    # Days an SRS address stays valid for a bounce (Mail::SRS's and postsrsd's 21).
    srs_max_age_days: int = setting(21, lambda v: positive(v) or at_most(1000)(v))
    # A message with more Received fields than this is refused before it is forwarded:
    # a forwarding loop ends (RFC 5321 §6.3: "at least 100").
    max_hops: int = setting(100, positive)


@dataclass(frozen=True)
class DNSRecordsConfig:
    """What ``mailstack dns records`` prints beside MX, SRV and DKIM (policy/sender_records.py)."""

    ttl: int = setting(3600, positive)
    spf_extra: tuple[str, ...] = setting(factory=tuple, each=spf_term)   # more mechanisms
    dmarc_policy: str = setting("none", one_of("none", "quarantine", "reject"))
    dmarc_rua: str = setting("", mailto_uri)
    mta_sts_mode: str = setting("testing", one_of("none", "testing", "enforce"))
    mta_sts_max_age: int = setting(7 * 86400, positive)
    tls_rpt_rua: str = setting("mailto:postmaster@{domain}", mailto_uri)
    # The MX host names the MTA-STS policy names (RFC 8461 §3.2 ``mx:``, ``*.`` wildcards
    # allowed); empty: client_setup.hostname or server.hostname.  The HTTPS listener
    # serves this policy and its hash is the _mta-sts record's id=.
    mta_sts_mx: tuple[str, ...] = setting(factory=tuple, each=mx_pattern)


@dataclass(frozen=True)
class AuthenticationConfig:
    """Message authentication on port 25 (policy/authentication.py): SPF, DKIM, ARC,
    DMARC, one Authentication-Results header.  Never on submission."""

    enabled: bool = True
    # A DNS failure during the checks: "accept" (recorded as temperror in the header) or
    # "defer" (451 4.7.5, the sender retries).  Never a 5xx.
    dns_failure: str = setting("accept", one_of("accept", "defer"))
    # ARC sealers (the d= of the newest ARC-Seal) whose forwards are exempt from a DMARC
    # p=reject when their chain validates: mailing lists, forwarding services.
    trusted_forwarders: tuple[str, ...] = setting(factory=tuple)
    # The public suffix list for DMARC's organizational domains; "" = the one shipped
    # with the publicsuffixlist package.
    public_suffix_list: str = ""
    # Worker threads that run the checks (they wait on DNS; the GIL serialises the rest).
    threads: int = setting(4, positive)
    # Messages larger than this get SPF only: DKIM needs the whole message in memory.
    # 0 = verify every message.
    max_message_size: int = setting(10 * 1024 * 1024, not_negative)


@dataclass(frozen=True)
class SpamConfig:
    """Content scanning on port 25 by rspamd (policy/spam_scan.py).  Off by default: it
    needs an rspamd the operator runs; once on, rspamd down means "unchecked", not refused."""

    enabled: bool = False
    # rspamd's normal worker (its HTTP protocol: POST /checkv2).
    url: str = setting("http://127.0.0.1:11333", http_url)
    # Seconds for the whole scan (connect, send, answer); past it the message is
    # delivered marked unchecked.
    timeout: float = setting(15.0, positive)
    # Larger messages are not scanned (marked unchecked); 0 = scan every message.
    max_message_size: int = setting(10 * 1024 * 1024, not_negative)
    # SPAM Blocker (probable spam to Junk) for accounts created from now on; each
    # customer switches their own (``mailstack account spam-blocker``, the self-check page).
    blocker_default: bool = False
    # Scan submitted mail (587/465) too: a compromised customer account spamming.
    submission: bool = False
    # A submitted message scoring at or above this is refused (550 5.7.1, check
    # spam-outbound); below it, it is sent unchanged.
    submission_threshold: float = setting(15.0, positive)
    # Learning from the customers' Junk moves over IMAP (spam/learning.py): rspamd's
    # controller worker (POST /learnspam, /learnham), its password if it asks for one
    # (sent as the Password header; never logged or printed).
    learning: bool = True
    controller_url: str = setting("http://127.0.0.1:11334", http_url)
    controller_password: str = ""
    # Seconds before a learn rspamd could not take is tried again (doubling per attempt,
    # at most an hour); larger messages are not learned (counted as too_large); learns
    # done are remembered this many days (a message is never learned twice meanwhile).
    learn_retry_interval: float = setting(60.0, positive)
    max_learn_size: int = setting(10 * 1024 * 1024, positive)
    learn_keep_days: int = setting(90, positive)
