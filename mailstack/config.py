"""Settings: one TOML file, loaded once into frozen, typed objects.

Why: configuration flows one way (ARCHITECTURE C6) -- ``load()`` validates everything
before any port is bound, so a typo stops start-up with a message naming the key instead
of surfacing as a strange runtime failure.  Each part of the server receives only its own
section.  Every setting is documented once, in ``docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; the message names the key."""


def _positive(value):
    if value <= 0:
        raise ValueError("must be greater than zero")


def _not_negative(value):
    if value < 0:
        raise ValueError("must not be negative")


def _port(value):
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")


def _ip(value):
    ipaddress.ip_address(value)


def _one_of(*choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
    return check


def _hostport(value):
    host, _, port = value.rpartition(":")
    if not host:
        host, port = value, "53"
    ipaddress.ip_address(host.strip("[]"))
    _port(int(port))


def setting(default=dataclasses.MISSING, check=None, each=None, factory=None):
    meta = {"check": check, "each": each}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerConfig:
    hostname: str = "mail.example.test"
    state_dir: str = "var"


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/mailstack.db"
    threads: int = setting(4, _positive)
    busy_timeout_ms: int = setting(5000, _positive)
    # Octets of message bodies being stored at once (store/budget.py); a burst of large
    # messages is stored a few at a time instead of all at once in memory.
    body_budget: int = setting(32 * 1024 * 1024, _positive)


def _network(value):
    ipaddress.ip_network(value, strict=False)


@dataclass(frozen=True)
class AuthThrottleConfig:
    """Password-guessing limits (realm/throttle.py): keyed by (source, account) and by
    source, never by the account alone, so an attacker cannot lock its owner out."""

    window: float = setting(900.0, _positive)
    pair_free: int = setting(3, _not_negative)
    pair_refuse_after: int = setting(10, _positive)
    base_delay: float = setting(0.5, _not_negative)
    max_delay: float = setting(8.0, _not_negative)
    ip_free: int = setting(10, _not_negative)
    ip_refuse_after: int = setting(100, _positive)
    ip_max_delay: float = setting(2.0, _not_negative)
    shared_networks: tuple[str, ...] = setting(factory=tuple, each=_network)
    shared_ip_free: int = setting(100, _not_negative)
    shared_ip_refuse_after: int = setting(2000, _positive)
    remember_success: float = setting(2592000.0, _not_negative)
    max_tracked: int = setting(100000, _positive)


@dataclass(frozen=True)
class AuthConfig:
    hash_threads: int = setting(2, _positive)
    default_scheme: str = setting("argon2", _one_of("argon2", "bcrypt_sha256", "sha512_crypt"))
    cache_seconds: int = setting(300, _not_negative)
    # From this moment no password is accepted without TLS, on any protocol.
    tls_cutover: datetime | None = None
    throttle: AuthThrottleConfig = setting(factory=AuthThrottleConfig)


@dataclass(frozen=True)
class SubmissionConfig:
    smtp_auth: bool = True            # the SMTP AUTH feature flag (PLAIN, LOGIN)
    recipients_per_hour: int = setting(500, _positive)
    help_url: str = "https://mail.example.test/help/smtp-auth"


@dataclass(frozen=True)
class PopBeforeSMTPConfig:
    enabled: bool = False
    window: int = setting(600, _positive)
    sunset: datetime | None = None
    protocols: tuple[str, ...] = setting(factory=lambda: ("pop3",), each=_one_of("pop3", "imap"))


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

    connections: int = setting(0, _not_negative)
    per_ip: int = setting(50, _positive)        # per client address; IPv6: per /64
    per_user: int = setting(30, _positive)      # per authenticated account


@dataclass(frozen=True)
class LimitsConfig:
    """Connection admission (protocols/connection_limits.py).  ``connections`` is the
    process total; it is lowered at start to what the descriptor limit allows.  The http
    listener (client setup) is Twisted's web server with its own idle timeout; uncounted."""

    connections: int = setting(5000, _positive)
    # Gateways that speak for many users (a webmail host, a proxy): no per-address limit.
    trusted_networks: tuple[str, ...] = setting(factory=tuple, each=_network)
    smtp: ProtocolLimits = setting(factory=ProtocolLimits)
    submission: ProtocolLimits = setting(factory=ProtocolLimits)
    pop3: ProtocolLimits = setting(factory=ProtocolLimits)
    imap: ProtocolLimits = setting(factory=ProtocolLimits)


@dataclass(frozen=True)
class SMTPConfig:
    max_message_size: int = setting(25 * 1024 * 1024, _positive)
    max_recipients: int = setting(100, _positive)
    # Where DATA over 256 KB is spooled as it arrives (message/spool.py); "" means
    # <state_dir>/spool.  Not a RAM-backed /tmp: the point is to keep messages out of memory.
    spool_dir: str = ""
    idle_timeout: int = setting(300, _positive)
    # DATA must arrive at this many bytes a second on average, after idle_timeout's grace
    # (Postfix's smtpd_min_data_rate): a trickle cannot hold a session open.
    min_data_rate: int = setting(500, _positive)
    # NOOP, RSET, VRFY, HELP, repeated HELO/EHLO: past this many the session is closed.
    junk_command_limit: int = setting(100, _positive)
    # Whether port 25 also relays for customers who authenticate there.
    mx_relay: str = setting("never", _one_of("never", "authenticated"))


@dataclass(frozen=True)
class POP3Config:
    idle_timeout: int = setting(600, _positive)
    # Before login: a connection that has not logged in by then is closed (issue 13).
    login_timeout: int = setting(60, _positive)


@dataclass(frozen=True)
class IMAPConfig:
    idle_timeout: int = setting(1800, _positive)
    # Before login: a connection that has not logged in by then is closed (issue 13).
    login_timeout: int = setting(60, _positive)
    max_append_size: int = setting(25 * 1024 * 1024, _positive)
    # A literal (APPEND) must arrive at this many bytes a second, after 60 s of grace.
    min_literal_rate: int = setting(500, _positive)
    # Seconds between checks for other processes' writes to folders clients IDLE on
    # (SQLite, or PostgreSQL while its LISTEN connection is down).
    idle_poll: float = setting(2.0, _positive)


@dataclass(frozen=True)
class DNSConfig:
    nameservers: tuple[str, ...] = setting(factory=tuple, each=_hostport)
    timeout: int = setting(5, _positive)


def _hostport_any(value):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("must be host:port")
    _port(int(port))


@dataclass(frozen=True)
class DeliveryConfig:
    smarthost: str = setting("", lambda v: v and _hostport_any(v))
    remote_port: int = setting(25, _port)
    max_queue_age: int = setting(5 * 24 * 3600, _positive)
    retry_schedule: tuple[int, ...] = setting(
        factory=lambda: (300, 900, 1800, 3600, 7200, 14400), each=_positive)
    queue_interval: int = setting(60, _positive)
    connect_timeout: int = setting(30, _positive)
    concurrency: int = setting(10, _positive)


def _code_range(value):
    """``127.0.0.2`` or ``127.0.0.2-127.0.0.11``."""
    for part in value.split("-", 1):
        ipaddress.IPv4Address(part.strip())


@dataclass(frozen=True)
class DNSBLConfig:
    zone: str = setting(dataclasses.MISSING)
    # Answers that mean "listed"; empty: 127.0.0.2-127.0.0.255 (127.255.255.x are list errors).
    codes: tuple[str, ...] = setting(factory=tuple, each=_code_range)
    reason: str = "see {lookup_url}"
    lookup_url: str = "https://multirbl.valli.org/lookup/{ip}.html"


@dataclass(frozen=True)
class AntispamConfig:
    dnsbl: tuple[DNSBLConfig, ...] = setting(factory=tuple)
    dnsbl_tempfail: str = setting("skip", _one_of("skip", "defer"))
    require_ptr: bool = True
    forward_confirmed_ptr: bool = False
    spam_traps: tuple[str, ...] = setting(factory=tuple)
    report_address: str = ""
    complaint_threshold: int = setting(3, _positive)
    complaint_window: int = setting(7 * 86400, _positive)
    harvest_threshold: int = setting(20, _positive)
    harvest_window: int = setting(600, _positive)
    block_duration: int = setting(2 * 86400, _positive)
    # Per source, 0 = block_duration: spam-trap hits, complaint blocks, harvest firewalling,
    # and `mailstack block add` without --hours.
    trap_block_duration: int = setting(0, _not_negative)
    complaints_block_duration: int = setting(0, _not_negative)
    harvest_block_duration: int = setting(0, _not_negative)
    manual_block_duration: int = setting(0, _not_negative)
    # A repeat offender's block lasts block_duration * repeat_factor ** (earlier blocks).
    repeat_factor: int = setting(2, _positive)
    max_block_duration: int = setting(30 * 86400, _positive)
    # Networks never subjected to the anti-spam checks (our own hosts).
    trusted_networks: tuple[str, ...] = setting(factory=lambda: ("127.0.0.1/32", "::1/128"),
                                                each=_network)


@dataclass(frozen=True)
class MigrationConfig:
    """Moving legacy customers: warnings before the dates, the reflector, OP25B."""

    # Days before the sunset / cutover in which legacy use is still accepted but each
    # affected account gets one notice a day in its INBOX.
    sunset_warning_days: int = setting(14, _not_negative)
    cutover_warning_days: int = setting(14, _not_negative)
    # "check" makes check@<each hosted domain> answer authenticated senders with a report.
    reflector_local_part: str = "check"
    # Outbound port 25 blocking for the ISP's own customer networks.
    customer_networks: tuple[str, ...] = setting(factory=tuple, each=_network)
    op25b_domains: tuple[str, ...] = setting(factory=tuple)
    op25b_domains_from: datetime | None = None
    op25b_all_from: datetime | None = None
    mx_hosts: tuple[str, ...] = setting(factory=tuple, each=_ip)


@dataclass(frozen=True)
class ClientSetupConfig:
    """What autoconfig, Autodiscover and ``mailstack dns records`` tell mail programs."""

    hostname: str = ""          # public name of the mail servers; "" = server.hostname
    display_name: str = "Mail"
    imaps_port: int = setting(993, _port)
    imap_port: int = setting(143, _port)
    pop3s_port: int = setting(995, _port)
    pop3_port: int = setting(110, _port)
    submissions_port: int = setting(465, _port)
    submission_port: int = setting(587, _port)
    https_port: int = setting(443, _port)


@dataclass(frozen=True)
class DomainsConfig:
    hosted: tuple[str, ...] = setting(factory=tuple)


@dataclass(frozen=True)
class ListenerConfig:
    protocol: str = setting(dataclasses.MISSING, _one_of("smtp", "submission", "pop3", "imap", "http"))
    port: int = setting(dataclasses.MISSING, _port)
    address: str = setting("127.0.0.1", _ip)
    tls: str = setting("none", _one_of("none", "starttls", "implicit"))
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
    dns: DNSConfig = setting(factory=DNSConfig)
    domains: DomainsConfig = setting(factory=DomainsConfig)
    delivery: DeliveryConfig = setting(factory=DeliveryConfig)
    antispam: AntispamConfig = setting(factory=AntispamConfig)
    client_setup: ClientSetupConfig = setting(factory=ClientSetupConfig)
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


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    if "base_dir" in raw:
        raise ConfigError("base_dir: unknown setting")
    raw["base_dir"] = str(path.resolve().parent)
    return from_dict(raw)


def from_dict(raw: dict) -> Config:
    config = _build(Config, raw, "")
    _check_listeners(config.listeners)
    return config


def _check_listeners(listeners):
    seen = set()
    for i, listener in enumerate(listeners):
        if listener.protocol == "http" and listener.tls == "starttls":
            raise ConfigError(f"listeners[{i}].tls: an http listener is 'none' or 'implicit'")
        key = (listener.address, listener.port)
        if listener.port and key in seen:
            raise ConfigError(f"listeners[{i}].port: {listener.address}:{listener.port} is used twice")
        seen.add(key)


def _build(cls, raw, where):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{_join(where, key)}: unknown setting")
    values = {}
    for f in dataclasses.fields(cls):
        key = _join(where, f.name)
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required setting is missing")
            continue
        values[f.name] = _convert(hints[f.name], raw[f.name], key, f.metadata)
    return cls(**values)


def _convert(hint, value, key, meta):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):   # "X | None": TOML has no null
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is datetime:
        return _moment(value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list")
        item = typing.get_args(hint)[0]
        return tuple(
            _convert(item, v, f"{key}[{i}]", {"check": meta.get("each")})
            for i, v in enumerate(value)
        )
    expected = {int: int, str: str, bool: bool, float: (int, float)}[hint]
    if not isinstance(value, expected) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: must be of type {hint.__name__}, not {type(value).__name__}")
    check = meta.get("check") if meta else None
    if check is not None:
        try:
            check(value)
        except ValueError as e:
            raise ConfigError(f"{key}: {value!r} {e}") from None
    return value


def _moment(value, key) -> datetime:
    """A TOML offset date-time, or a date meaning its midnight UTC; never a local time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{key}: give a UTC offset, e.g. 2027-03-01T00:00:00Z")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise ConfigError(f"{key}: must be a date or an offset date-time, not {type(value).__name__}")


def _join(where, key):
    return f"{where}.{key}" if where else key
