"""Did you mean: the addresses and domains closest to one that was mistyped.

Why: most "why was my mail bounced?" calls end at a mistyped address, not a block.  The
support desk sees, next to a ``550 5.1.1``, the existing addresses of that domain closest
to the one tried; a customer whose outbound mail failed to ``gmial.com`` reads, in our
bounce, the domain they probably meant.  Distance is the optimal-string-alignment variant of
the Damerau-Levenshtein distance (a swapped pair of letters costs one edit), after the
cheap fixes people most often need (dots, separators, case, a ``+tag``).

Standards: RFC 5321 §2.4 (local parts are compared as given; we compare case-folded only to
suggest).  Security: a suggestion names an existing address, which is exactly what a
directory harvester wants: this module is for the desk's command and for a domain hint in a
bounce to our own customer.  No SMTP reply imports it (``tests/unit/test_did_you_mean.py``
checks the import graph and every reply text).
"""

from __future__ import annotations

import re

# Providers whose names people mistype most; a domain that *is* one of these is never a typo.
WELL_KNOWN_DOMAINS = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.jp", "ymail.com", "hotmail.com",
    "hotmail.co.jp", "hotmail.co.uk", "outlook.com", "outlook.jp", "live.com", "live.jp",
    "msn.com", "icloud.com", "me.com", "mac.com", "aol.com", "mail.com", "gmx.de", "gmx.net",
    "web.de", "yandex.ru", "mail.ru", "proton.me", "protonmail.com", "docomo.ne.jp",
    "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "nifty.com", "ocn.ne.jp",
    "biglobe.ne.jp", "so-net.ne.jp", "comcast.net", "verizon.net", "att.net", "orange.fr",
    "free.fr", "libero.it", "qq.com", "163.com", "naver.com",
)
_SEPARATORS = re.compile(r"[._\-]")
MAX_SUGGESTIONS = 3
MAX_LOCAL, MAX_DOMAIN = 64, 255      # RFC 5321 §4.5.3.1: longer is no address to correct


def distance(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two neighbours) turning ``a`` into ``b``."""
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[len(b)]


def _allowed(text: str) -> int:
    """How many edits still count as a typo of a name this long (short names: fewer)."""
    return 0 if len(text) < 3 else 1 if len(text) < 8 else 2 if len(text) < 16 else 3


def _local_score(tried: str, existing: str) -> float | None:
    """How far ``existing`` is from ``tried`` as a typo; None when it is not a likely one."""
    tried, existing = tried.lower(), existing.lower()
    if tried == existing:
        return None
    base = tried.split("+", 1)[0]
    if base == existing:
        return 0.5                                    # a +tag the domain does not know
    if _SEPARATORS.sub("", base) == _SEPARATORS.sub("", existing):
        return 0.5                                    # dots dropped, added or swapped for _ -
    edits = distance(base, existing)
    return edits if edits <= _allowed(existing) else None


def similar_addresses(tried: str, existing, limit: int = MAX_SUGGESTIONS) -> list[str]:
    """The existing addresses of ``tried``'s domain closest to it, best first."""
    local, _, domain = tried.rpartition("@")
    domain = domain.lower()
    if len(local) > MAX_LOCAL:
        return []
    scored = []
    for address in existing:
        their_local, _, their_domain = address.rpartition("@")
        if their_domain.lower() != domain:
            continue
        score = _local_score(local, their_local)
        if score is not None:
            scored.append((score, address.lower()))
    return [address for _, address in sorted(set(scored))[:limit]]


def likely_domain(domain: str, known=WELL_KNOWN_DOMAINS) -> str | None:
    """The well-known (or given) domain ``domain`` is probably a typo of; None if none is."""
    domain = domain.lower().rstrip(".")
    known = [k.lower() for k in known]
    if not domain or len(domain) > MAX_DOMAIN or domain in known:
        return None
    best = sorted((distance(domain, k), k) for k in known)
    if not best:
        return None
    edits, closest = best[0]
    tie = len(best) > 1 and best[1][0] == edits
    if edits > min(_allowed(domain), 2) or tie:
        return None
    return closest


def domain_hint(recipient: str, known=WELL_KNOWN_DOMAINS) -> str | None:
    """``recipient`` with its domain corrected when the domain looks like a typo."""
    local, at, domain = recipient.rpartition("@")
    intended = likely_domain(domain, known) if at else None
    return f"{local}@{intended}" if intended else None
