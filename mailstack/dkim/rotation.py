"""``dkim keygen`` and ``dkim rotate`` as single transactions over ``store/dkim_keys.py``.

Why one transaction each: the plan (``schedule.py``) is made from the domain's keys as
they are when the new ones are written, so two operators rotating at once cannot leave two
waiting key sets.  The key pairs are made before the transaction (an RSA-2048 key takes a
good part of a second) and handed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mailstack.dkim import keys, schedule
from mailstack.store import dkim_keys


def make_pairs(algorithms=keys.ALGORITHMS) -> dict:
    return {a: keys.generate(a) for a in algorithms}


def keygen(conn, domain: str, at: datetime, pairs: dict, base: str | None = None) -> schedule.Plan:
    """The domain's first keys, signing from ``at``."""
    plan = schedule.first_keys(dkim_keys.listing(conn, domain), at, base, tuple(pairs))
    _add(conn, domain, at, pairs, plan)
    return plan


def rotate(conn, domain: str, at: datetime, delay: timedelta, pairs: dict,
           base: str | None = None) -> schedule.Plan:
    """New keys published at ``at``, signing from ``at + delay``, when the old ones retire."""
    plan = schedule.rotation(dkim_keys.listing(conn, domain), at, delay, base)
    _add(conn, domain, at, {a: pairs[a] for a in plan.selectors}, plan)
    dkim_keys.retire(conn, plan.retire, plan.signs_from)
    return plan


def _add(conn, domain, at, pairs, plan) -> None:
    for algorithm, pair in pairs.items():
        dkim_keys.add(conn, domain, plan.selectors[algorithm], algorithm, pair.private_key,
                      pair.public_key, at, plan.signs_from)
