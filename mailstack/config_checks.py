"""What a setting may hold: the value checks, and ``setting()`` that attaches them to a field.

Why a module of its own: ``config_sections`` says which settings exist and their defaults,
``config.load`` walks a TOML file into them; the checks are the third part, small
predicates that each raise ``ValueError`` with the end of the message ("must be greater
than zero").  ``config.load`` runs them on every value read and puts the key in front, so a
bad setting stops start-up naming its key (ARCHITECTURE C6).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import field


def setting(default=dataclasses.MISSING, check=None, each=None, factory=None):
    """A dataclass field whose value ``config.load`` checks: ``check`` on the value, or
    ``each`` on every item of a list."""
    meta = {"check": check, "each": each}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def positive(value):
    if value <= 0:
        raise ValueError("must be greater than zero")


def not_negative(value):
    if value < 0:
        raise ValueError("must not be negative")


def at_most(limit):
    def check(value):
        if value > limit:
            raise ValueError(f"must be at most {limit}")
    return check


def domain_name(value):
    """A domain name in lower case, dot-separated labels (no trailing dot)."""
    labels = value.split(".")
    if (value != value.lower() or len(value) > 253 or len(labels) < 2
            or not all(re.fullmatch(r"(?!-)[a-z0-9-]{1,63}(?<!-)", label) for label in labels)):
        raise ValueError("must be a domain name in lower case, like mail.example.net")


def srs_secret(value):
    """At least 16 characters: the HMAC key of the SRS addresses (srs.py)."""
    if len(value) < 16:
        raise ValueError("must be at least 16 characters (use a random string)")


def port_number(value):
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")


def ip_address(value):
    ipaddress.ip_address(value)


def ip_network(value):
    ipaddress.ip_network(value, strict=False)


def one_of(*choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(map(repr, choices))}")
    return check


def mailto_uri(value):
    """Empty, or a ``mailto:`` URI for a DNS record's report address (RFC 7489, RFC 8460)."""
    if value and (not value.startswith("mailto:") or any(c in value for c in ' ";,\\')):
        raise ValueError("must be a mailto: URI without spaces, quotes, commas or semicolons")


def mx_pattern(value):
    """An MTA-STS ``mx:`` pattern (RFC 8461 §3.2): a host name in A-labels, or ``*.`` and one."""
    host = value.removeprefix("*.")
    labels = host.split(".")
    if not value.isascii() or len(labels) < 2 or any(
            not l or len(l) > 63 or not l.replace("-", "").isalnum() for l in labels):
        raise ValueError("must be a host name such as mx.example.net or *.example.net")


def spf_term(value):
    """One SPF mechanism or modifier (RFC 7208 §4.6.1): no spaces, quotes or backslashes."""
    if not value or any(c in value for c in ' "\\') or not value.isascii():
        raise ValueError("must be one SPF term such as ip4:192.0.2.0/24 or include:example.net")


def nameserver(value):
    """``ip:port`` (``[ip]:port`` for IPv6), or an IPv4 ``ip`` meaning port 53."""
    host, _, port = value.rpartition(":")
    if not host:
        host, port = value, "53"
    ipaddress.ip_address(host.strip("[]"))
    port_number(int(port))


def host_and_port(value):
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("must be host:port")
    port_number(int(port))


def http_url(value):
    """``http://host:port`` (rspamd's normal worker; no path, no TLS: a local service)."""
    from urllib.parse import urlsplit
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ValueError("must be http://host:port")


def dnsbl_codes(value):
    """``127.0.0.2`` or ``127.0.0.2-127.0.0.11``."""
    for part in value.split("-", 1):
        ipaddress.IPv4Address(part.strip())


def database_url(value):
    """A URL every thread of the pool and every process sharing the store can open: an
    in-memory SQLite database is private to one connection, so it is refused at load."""
    if not value.strip():
        raise ValueError("must not be empty")
    if value.startswith("sqlite") and (value.rstrip("/") in ("sqlite:", "sqlite:/")
                                      or ":memory:" in value or "mode=memory" in value):
        raise ValueError("is an in-memory SQLite database, which the server's threads and "
                         "the admin commands cannot share: give a file, "
                         "e.g. sqlite:///var/mailstack.db")


def mx_relay_needs_customers(config) -> str | None:
    """``[smtp] mx_relay = "customers"`` relays for customer networks: with none configured
    it would mean nothing, and an operator who set it expects it to.  The problem, or None."""
    if config.smtp.mx_relay == "customers" and not config.migration.customer_networks:
        return ('smtp.mx_relay: "customers" needs [migration] customer_networks '
                '(the networks whose POP-before-SMTP window relays on port 25)')
    return None
