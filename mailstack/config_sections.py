"""The settings: one frozen dataclass per section of the TOML file, with its defaults.

Why a module of its own: this is the one place that says which settings exist, their
types, defaults and limits (``config_checks``); ``config.load`` reads a file into them and
``service.build`` hands each part of the server only its own section (ARCHITECTURE C6).
Every setting is documented once, in ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mailstack.config_checks import (database_url, dnsbl_codes, host_and_port, ip_address,
                                     ip_network, nameserver, not_negative, one_of, port_number,
                                     positive, setting)
from mailstack.config_mail_trust import (AuthenticationConfig, DKIMConfig, DNSRecordsConfig,
                                         ForwardingConfig, MTASTSConfig, SpamConfig)


@dataclass(frozen=True)
class ServerConfig:
    hostname: str = "mail.example.test"
    state_dir: str = "var"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = setting("sqlite:///var/mailstack.db", database_url)
    threads: int = setting(4, positive)
    busy_timeout_ms: int = setting(5000, positive)
    # Octets of message bodies being stored at once (store/budget.py); a burst of large
    # messages is stored a few at a time instead of all at once in memory.
    body_budget: int = setting(32 * 1024 * 1024, positive)


@dataclass(frozen=True)
class AuthThrottleConfig:
    """Password-guessing limits (realm/throttle.py): keyed by (source, account) and by
    source, never by the account alone, so an attacker cannot lock its owner out."""

    window: float = setting(900.0, positive)
    pair_free: int = setting(3, not_negative)
    pair_refuse_after: int = setting(10, positive)
    base_delay: float = setting(0.5, not_negative)
    max_delay: float = setting(8.0, not_negative)
    ip_free: int = setting(10, not_negative)
    ip_refuse_after: int = setting(100, positive)
    ip_max_delay: float = setting(2.0, not_negative)
    shared_networks: tuple[str, ...] = setting(factory=tuple, each=ip_network)
    shared_ip_free: int = setting(100, not_negative)
    shared_ip_refuse_after: int = setting(2000, positive)
    remember_success: float = setting(2592000.0, not_negative)
    max_tracked: int = setting(100000, positive)


@dataclass(frozen=True)
class AuthConfig:
    hash_threads: int = setting(2, positive)
    default_scheme: str = setting("argon2", one_of("argon2", "bcrypt_sha256", "sha512_crypt"))
    cache_seconds: int = setting(300, not_negative)
    # A password set by an administrator (account add/passwd) must be at least this long.
    min_password_length: int = setting(8, positive)
    # From this moment no password is accepted without TLS, on any protocol.
    tls_cutover: datetime | None = None
    throttle: AuthThrottleConfig = setting(factory=AuthThrottleConfig)


@dataclass(frozen=True)
class SubmissionConfig:
    smtp_auth: bool = True            # the SMTP AUTH feature flag (PLAIN, LOGIN)
    recipients_per_hour: int = setting(500, positive)
    help_url: str = "https://mail.example.test/help/smtp-auth"


@dataclass(frozen=True)
class PopBeforeSMTPConfig:
    enabled: bool = False
    window: int = setting(600, positive)
    sunset: datetime | None = None
    protocols: tuple[str, ...] = setting(factory=lambda: ("pop3",), each=one_of("pop3", "imap"))


@dataclass(frozen=True)
class TLSConfig:
    certificate: str = "certs/server.pem"
    private_key: str = "certs/server.key"
    ca_certificate: str = "certs/ca.pem"
    generate_dev: bool = False


@dataclass(frozen=True)
class ProtocolLimits:
    """Connection limits of one protocol (all its listeners together); 0 means "no limit of
    its own" for ``connections`` (the process total, less a reserve for the others)."""

    connections: int = setting(0, not_negative)
    per_ip: int = setting(50, positive)        # per client address; IPv6: per /64
    per_user: int = setting(30, positive)      # per authenticated account


@dataclass(frozen=True)
class LimitsConfig:
    """Connection admission (protocols/connection_limits.py).  ``connections`` is the
    process total; it is lowered at start to what the descriptor limit allows.  The http
    listener (client setup) is Twisted's web server with its own idle timeout; uncounted."""

    connections: int = setting(5000, positive)
    # Gateways that speak for many users (a webmail host, a proxy): no per-address limit.
    trusted_networks: tuple[str, ...] = setting(factory=tuple, each=ip_network)
    smtp: ProtocolLimits = setting(factory=ProtocolLimits)
    submission: ProtocolLimits = setting(factory=ProtocolLimits)
    pop3: ProtocolLimits = setting(factory=ProtocolLimits)
    imap: ProtocolLimits = setting(factory=ProtocolLimits)
    sieve: ProtocolLimits = setting(factory=ProtocolLimits)


@dataclass(frozen=True)
class SMTPConfig:
    max_message_size: int = setting(25 * 1024 * 1024, positive)
    max_recipients: int = setting(100, positive)
    # Where DATA over 256 KB, and an IMAP APPEND too large for a command, are spooled as
    # they arrive (message/spool.py); "" means <state_dir>/spool.  Not a RAM-backed /tmp:
    # the point is to keep messages out of memory.
    spool_dir: str = ""
    idle_timeout: int = setting(300, positive)
    # DATA must arrive at this many bytes a second on average, after idle_timeout's grace
    # (Postfix's smtpd_min_data_rate): a trickle cannot hold a session open.
    min_data_rate: int = setting(500, positive)
    # NOOP, RSET, VRFY, HELP, repeated HELO/EHLO: past this many the session is closed.
    junk_command_limit: int = setting(100, positive)
    # Who port 25 relays for (policy/mx.py): "never" (nobody), "authenticated" (SMTP AUTH
    # logins, AUTH offered after STARTTLS), "customers" (those, and [migration]
    # customer_networks with a live POP-before-SMTP window; needs customer_networks).
    mx_relay: str = setting("never", one_of("never", "authenticated", "customers"))
    # A message line ended by a bare LF or CR (RFC 5321 §2.3.8 forbids both): "normalize"
    # stores it as a CRLF line, "reject" refuses the message (554 5.6.0); either way only
    # CRLF.CRLF ends DATA (Postfix 3.9's smtpd_forbid_bare_newline).
    bare_newlines: str = setting("normalize", one_of("normalize", "reject"))


@dataclass(frozen=True)
class POP3Config:
    idle_timeout: int = setting(600, positive)
    # Before login: a connection that has not logged in by then is closed (issue 13).
    login_timeout: int = setting(60, positive)


@dataclass(frozen=True)
class IMAPConfig:
    idle_timeout: int = setting(1800, positive)
    # Before login: a connection that has not logged in by then is closed (issue 13).
    login_timeout: int = setting(60, positive)
    max_append_size: int = setting(25 * 1024 * 1024, positive)
    # A literal (APPEND) must arrive at this many bytes a second, after 60 s of grace.
    min_literal_rate: int = setting(500, positive)
    # Seconds between checks for other processes' writes to folders clients IDLE on
    # (SQLite, or PostgreSQL while its LISTEN connection is down).
    idle_poll: float = setting(2.0, positive)


@dataclass(frozen=True)
class SieveConfig:
    """ManageSieve (RFC 5804) on the ``sieve`` listeners, and the scripts' limits."""

    max_script_size: int = setting(64 * 1024, positive)   # octets of one script
    max_scripts: int = setting(16, positive)               # scripts per account
    idle_timeout: int = setting(1800, positive)
    # Before login: a connection that has not logged in by then is closed (issue 13).
    login_timeout: int = setting(60, positive)


@dataclass(frozen=True)
class DNSConfig:
    nameservers: tuple[str, ...] = setting(factory=tuple, each=nameserver)
    timeout: int = setting(5, positive)


@dataclass(frozen=True)
class DeliveryConfig:
    smarthost: str = setting("", lambda v: v and host_and_port(v))
    remote_port: int = setting(25, port_number)
    max_queue_age: int = setting(5 * 24 * 3600, positive)
    retry_schedule: tuple[int, ...] = setting(
        factory=lambda: (300, 900, 1800, 3600, 7200, 14400), each=positive)
    queue_interval: int = setting(60, positive)
    connect_timeout: int = setting(30, positive)
    concurrency: int = setting(10, positive)


@dataclass(frozen=True)
class DNSBLConfig:
    zone: str = setting(dataclasses.MISSING)
    # Answers that mean "listed"; empty: 127.0.0.2-127.0.0.255 (127.255.255.x are list errors).
    codes: tuple[str, ...] = setting(factory=tuple, each=dnsbl_codes)
    reason: str = "see {lookup_url}"
    lookup_url: str = "https://multirbl.valli.org/lookup/{ip}.html"


@dataclass(frozen=True)
class AntispamConfig:
    dnsbl: tuple[DNSBLConfig, ...] = setting(factory=tuple)
    dnsbl_tempfail: str = setting("skip", one_of("skip", "defer"))
    require_ptr: bool = True
    forward_confirmed_ptr: bool = False
    spam_traps: tuple[str, ...] = setting(factory=tuple)
    report_address: str = ""
    complaint_threshold: int = setting(3, positive)
    complaint_window: int = setting(7 * 86400, positive)
    harvest_threshold: int = setting(20, positive)
    harvest_window: int = setting(600, positive)
    block_duration: int = setting(2 * 86400, positive)
    # Per source, 0 = block_duration: spam-trap hits, complaint blocks, harvest firewalling,
    # and `mailstack block add` without --hours.
    trap_block_duration: int = setting(0, not_negative)
    complaints_block_duration: int = setting(0, not_negative)
    harvest_block_duration: int = setting(0, not_negative)
    manual_block_duration: int = setting(0, not_negative)
    # A repeat offender's block lasts block_duration * repeat_factor ** (earlier blocks).
    repeat_factor: int = setting(2, positive)
    max_block_duration: int = setting(30 * 86400, positive)
    # Networks never subjected to the anti-spam checks (our own hosts).
    trusted_networks: tuple[str, ...] = setting(factory=lambda: ("127.0.0.1/32", "::1/128"),
                                                each=ip_network)


@dataclass(frozen=True)
class MigrationConfig:
    """Moving legacy customers: warnings before the dates, the reflector, OP25B."""

    # Days before the sunset / cutover in which legacy use is still accepted but each
    # affected account gets one notice a day in its INBOX.
    sunset_warning_days: int = setting(14, not_negative)
    cutover_warning_days: int = setting(14, not_negative)
    # "check" makes check@<each hosted domain> answer authenticated senders with a report.
    reflector_local_part: str = "check"
    # Outbound port 25 blocking for the ISP's own customer networks.
    customer_networks: tuple[str, ...] = setting(factory=tuple, each=ip_network)
    op25b_domains: tuple[str, ...] = setting(factory=tuple)
    op25b_domains_from: datetime | None = None
    op25b_all_from: datetime | None = None
    mx_hosts: tuple[str, ...] = setting(factory=tuple, each=ip_address)


@dataclass(frozen=True)
class ClientSetupConfig:
    """What autoconfig, Autodiscover and ``mailstack dns records`` tell mail programs."""

    hostname: str = ""          # public name of the mail servers; "" = server.hostname
    display_name: str = "Mail"
    imaps_port: int = setting(993, port_number)
    imap_port: int = setting(143, port_number)
    pop3s_port: int = setting(995, port_number)
    pop3_port: int = setting(110, port_number)
    submissions_port: int = setting(465, port_number)
    submission_port: int = setting(587, port_number)
    https_port: int = setting(443, port_number)
    sieve_port: int = setting(4190, port_number)     # ManageSieve, STARTTLS (RFC 5804 §1.8)


@dataclass(frozen=True)
class WhiteholeConfig:
    """The whitehole request page (``/whitehole`` on the HTTPS listener, issue 21)."""

    requests_per_minute: int = setting(10, positive)     # submissions per client IP
    review_days: int = setting(90, positive)             # an approved entry's review date


@dataclass(frozen=True)
class DomainsConfig:
    hosted: tuple[str, ...] = setting(factory=tuple)


@dataclass(frozen=True)
class ListenerConfig:
    protocol: str = setting(dataclasses.MISSING, one_of("smtp", "submission", "pop3", "imap", "http",
                                                        "metrics", "sieve"))
    port: int = setting(dataclasses.MISSING, port_number)
    address: str = setting("127.0.0.1", ip_address)
    tls: str = setting("none", one_of("none", "starttls", "implicit"))
    name: str = ""


@dataclass(frozen=True)
class Config:
    server: ServerConfig = setting(factory=ServerConfig)
    database: DatabaseConfig = setting(factory=DatabaseConfig)
    auth: AuthConfig = setting(factory=AuthConfig)
    submission: SubmissionConfig = setting(factory=SubmissionConfig)
    pop_before_smtp: PopBeforeSMTPConfig = setting(factory=PopBeforeSMTPConfig)
    tls: TLSConfig = setting(factory=TLSConfig)
    smtp: SMTPConfig = setting(factory=SMTPConfig)
    pop3: POP3Config = setting(factory=POP3Config)
    imap: IMAPConfig = setting(factory=IMAPConfig)
    sieve: SieveConfig = setting(factory=SieveConfig)
    dns: DNSConfig = setting(factory=DNSConfig)
    domains: DomainsConfig = setting(factory=DomainsConfig)
    delivery: DeliveryConfig = setting(factory=DeliveryConfig)
    dkim: DKIMConfig = setting(factory=DKIMConfig)
    forwarding: ForwardingConfig = setting(factory=ForwardingConfig)
    dns_records: DNSRecordsConfig = setting(factory=DNSRecordsConfig)
    mta_sts: MTASTSConfig = setting(factory=MTASTSConfig)
    antispam: AntispamConfig = setting(factory=AntispamConfig)
    authentication: AuthenticationConfig = setting(factory=AuthenticationConfig)
    spam: SpamConfig = setting(factory=SpamConfig)
    client_setup: ClientSetupConfig = setting(factory=ClientSetupConfig)
    whitehole: WhiteholeConfig = setting(factory=WhiteholeConfig)
    migration: MigrationConfig = setting(factory=MigrationConfig)
    limits: LimitsConfig = setting(factory=LimitsConfig)
    listeners: tuple[ListenerConfig, ...] = setting(factory=tuple)
    base_dir: str = "."  # the directory of the config file; relative paths resolve here

    def path(self, relative: str) -> Path:
        """Resolve a path setting against the config file's directory."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def database_url(self) -> str:
        """The database URL with a relative SQLite path resolved against ``base_dir``."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            rest = url[len(prefix):]
            if rest and rest != ":memory:":
                return prefix + str(self.path(rest).resolve())
        return url
