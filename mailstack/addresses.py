"""Mail addresses: parsing, normalising, and spotting relay tricks.

Why a module of its own: the relay decision, the recipient lookup, the admin CLI and the
alias table must agree on what an address *is*.  We store addresses lower-cased (local
parts are case-insensitive at every ISP we know of, RFC 5321 §2.4 notwithstanding) and
refuse the forms that open relays were historically tricked with: ``%``-hack and ``!``
bang paths in the local part, source routes (``@a,@b:u@c``), quoted local parts that hide
an ``@``, and IP-literal domains (RFC 5321 §4.1.3) that bypass domain checks.  A local
part is at most 64 octets (RFC 5321 §4.5.3.1.1), except an SRS address's (``srs.py``),
which carries another address in it; the whole path is still at most 254.

Standards: RFC 5321 §4.1.2, §3.6 (source routes), RFC 5322 §3.4.1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailstack.srs import is_srs_local

_ATEXT = r"[A-Za-z0-9!#$&'*+/=?^_`{|}~-]"  # RFC 5322 atext minus '%' (the %-hack)
_LOCAL = re.compile(rf"^{_ATEXT}+(\.{_ATEXT}+)*$")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^{_LABEL}(\.{_LABEL})+$")
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")   # RFC 5321 allows a single label
MAX_ADDRESS = 254
MAX_LOCAL = 64


class AddressError(ValueError):
    """Not an address we accept; the message says why, for logs and CLI errors."""


class RelayTrick(AddressError):
    """A form historically used to trick servers into relaying; answered as relay denied."""


@dataclass(frozen=True)
class Address:
    local: str
    domain: str

    def __str__(self) -> str:
        return f"{self.local}@{self.domain}"


def parse(text: str, *, fqdn: bool = True) -> Address:
    """Parse and normalise ``local@domain``; raise ``AddressError`` for anything tricky.

    ``fqdn=False`` accepts a single-label domain (``root@gateway``), which RFC 5321 allows:
    envelope senders of badly configured hosts look like that and are not our business to
    refuse on syntax.
    """
    if not text or len(text) > MAX_ADDRESS:
        raise AddressError("address is empty or too long")
    if text.startswith("@"):
        raise RelayTrick("source routes are not accepted")
    if text.startswith('"'):
        raise RelayTrick("quoted local parts are not accepted")
    local, sep, domain = text.rpartition("@")
    if not sep or not local:
        raise AddressError("address has no domain")
    if "%" in local or "!" in local:
        raise RelayTrick("relay tricks (% or !) in the local part are not accepted")
    if (len(local) > MAX_LOCAL and not is_srs_local(local)) or not _LOCAL.match(local):
        raise AddressError("invalid local part")
    if domain.startswith("["):
        raise RelayTrick("IP-literal domains are not accepted")
    return Address(local.lower(), parse_domain(domain, fqdn=fqdn))


def parse_domain(text: str, *, fqdn: bool = True) -> str:
    domain = text.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise AddressError("invalid domain") from None
    if len(domain) > 253 or not (_DOMAIN if fqdn else _HOST).match(domain):
        raise AddressError("invalid domain")
    return domain


def normalise(text: str, *, fqdn: bool = True) -> str:
    return str(parse(text, fqdn=fqdn))
