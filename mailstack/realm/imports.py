"""Reading old account files: /etc/passwd-style, Dovecot passwd-file, htpasswd, CSV.

Why keep the old hashes: the customers' passwords are unknown to us; their old hashes are
verified through passlib on the next login and replaced by the current scheme then
(``verify_and_update``), so a migration needs no password reset.  A plaintext password
(Dovecot ``{PLAIN}``) is hashed at once: it is never stored as it came.

Formats (one account per line, ``#`` comments and blank lines ignored):
- ``passwd``/``dovecot``: ``user[@domain]:HASH[:uid:gid:gecos:home:shell:extra]``; Dovecot
  ``{SCHEME}`` prefixes (SHA512-CRYPT, SHA256-CRYPT, MD5-CRYPT, CRYPT, DES-CRYPT, BLF-CRYPT,
  ARGON2I/ARGON2ID, PLAIN) are understood;
- ``htpasswd``: ``user:HASH`` (bcrypt, $apr1$ MD5, crypt, {SHA});
- ``csv``: a header with ``address`` and ``password_hash`` (or ``password``) and optionally
  ``aliases`` (space separated).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from mailstack import addresses

DOVECOT_PREFIXES = {
    "SHA512-CRYPT": "", "SHA256-CRYPT": "", "MD5-CRYPT": "", "CRYPT": "", "DES-CRYPT": "",
    "BLF-CRYPT": "", "ARGON2I": "", "ARGON2ID": "", "SHA": "{SHA}", "SSHA": "{SSHA}",
}


@dataclass(frozen=True)
class Record:
    line: int
    address: str
    password_hash: str | None      # None: ``plaintext`` must be hashed
    plaintext: str | None = None
    aliases: tuple[str, ...] = ()


class LineError(ValueError):
    def __init__(self, line: int, why: str):
        super().__init__(f"line {line}: {why}")
        self.line = line


def _hash_field(text: str) -> tuple[str | None, str | None]:
    """(hash, plaintext) from a password field, removing a Dovecot ``{SCHEME}`` prefix."""
    if text.startswith("{") and "}" in text:
        scheme, _, rest = text[1:].partition("}")
        scheme = scheme.upper()
        if scheme in ("PLAIN", "CLEARTEXT"):
            return None, rest
        if scheme not in DOVECOT_PREFIXES:
            raise ValueError(f"unsupported Dovecot scheme {{{scheme}}}")
        return DOVECOT_PREFIXES[scheme] + rest, None
    return text, None


def _address(user: str, domain: str | None) -> str:
    if "@" not in user:
        if not domain:
            raise ValueError(f"{user!r} has no domain: pass --domain")
        user = f"{user}@{domain}"
    return addresses.normalise(user)


def parse(text: str, fmt: str, *, domain: str | None = None, context=None):
    """Yield Records and LineErrors, in file order."""
    if fmt == "csv":
        yield from _parse_csv(text, domain, context)
        return
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            user, _, rest = line.partition(":")
            field = rest.split(":", 1)[0] if fmt in ("passwd", "dovecot") else rest
            if not user or not field:
                raise ValueError("expected user:hash")
            yield _record(number, _address(user, domain), field, (), context)
        except (ValueError, addresses.AddressError) as e:
            yield LineError(number, str(e))


def _parse_csv(text, domain, context):
    reader = csv.DictReader(io.StringIO(text))
    for number, row in enumerate(reader, 2):
        try:
            secret = row.get("password_hash") or row.get("password") or ""
            aliases = tuple(addresses.normalise(a) for a in (row.get("aliases") or "").split())
            yield _record(number, _address((row.get("address") or "").strip(), domain),
                          secret.strip(), aliases, context)
        except (ValueError, addresses.AddressError) as e:
            yield LineError(number, str(e))


def _record(number, address, field, aliases, context) -> Record:
    password_hash, plaintext = _hash_field(field)
    if password_hash is not None and context is not None and not context.identify(password_hash):
        raise ValueError("the password hash is not in a scheme we can verify")
    if plaintext == "":
        raise ValueError("empty password")
    return Record(number, address, password_hash, plaintext, aliases)
