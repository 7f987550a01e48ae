"""Local blocks: addresses and networks whose mail we refuse or whose connections we drop.

Why every block expires: spammers move around every few days and addresses are reused by
innocent customers of other ISPs; a permanent block list rots.  A repeat offender's block
lasts longer (the caller passes the duration rule).  Removal is recorded, not deleted, so
``mailstack why`` can tell the history.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, insert, not_, or_, select, update
from sqlalchemy.engine import Connection

from mailstack.store.errors import NotFound
from mailstack.store.schema import blocks


@dataclass(frozen=True)
class Block:
    id: int
    network: str
    action: str
    source: str
    reason: str
    evidence: str
    added_by: str
    created_at: datetime
    expires_at: datetime
    removed_at: datetime | None = None

    def in_force(self, at: datetime) -> bool:
        return self.removed_at is None and self.expires_at > at

    def covered(self, at: datetime) -> bool:
        """Whether the block was in force at ``at`` (the time of a refusal)."""
        return self.created_at <= at and at < self.expires_at and (
            self.removed_at is None or at < self.removed_at)


_COLUMNS = (blocks.c.id, blocks.c.network, blocks.c.action, blocks.c.source, blocks.c.reason,
            blocks.c.evidence, blocks.c.added_by, blocks.c.created_at, blocks.c.expires_at,
            blocks.c.removed_at)


def network_of(text: str) -> str:
    """Canonical ``addr/len`` for an IP or a network; raises ValueError otherwise."""
    return ipaddress.ip_network(text.strip(), strict=False).with_prefixlen


def earlier_blocks(conn: Connection, network: str, since: datetime) -> int:
    return int(conn.execute(select(func.count(blocks.c.id)).where(
        blocks.c.network == network, blocks.c.created_at >= since)).scalar())


def add(conn: Connection, network: str, *, action: str, source: str, reason: str,
        evidence: str, added_by: str, at: datetime, duration: timedelta) -> Block:
    network = network_of(network)
    values = dict(network=network, action=action, source=source, reason=reason[:255],
                  evidence=evidence, added_by=added_by[:64], created_at=at,
                  expires_at=at + duration)
    block_id = conn.execute(insert(blocks).values(**values)).inserted_primary_key[0]
    return Block(block_id, **values)


def _active(at: datetime):
    return and_(blocks.c.removed_at.is_(None), blocks.c.expires_at > at)


def active_for(conn: Connection, ip: str, at: datetime) -> list[Block]:
    """Active blocks covering ``ip``: its own /32 (/128) by index, plus any wider network."""
    address = ipaddress.ip_address(ip)
    exact = f"{address.compressed}/{address.max_prefixlen}"
    wide = not_(or_(blocks.c.network.like("%/32"), blocks.c.network.like("%/128")))
    rows = conn.execute(select(*_COLUMNS).where(_active(at), or_(blocks.c.network == exact, wide))
                        .order_by(blocks.c.expires_at.desc()))
    return [Block(*r) for r in rows if address in ipaddress.ip_network(r.network)]


def list_active(conn: Connection, at: datetime, action: str | None = None) -> list[Block]:
    query = select(*_COLUMNS).where(_active(at)).order_by(blocks.c.created_at)
    if action is not None:
        query = query.where(blocks.c.action == action)
    return [Block(*r) for r in conn.execute(query)]


def history(conn: Connection, ip: str) -> list[Block]:
    address = ipaddress.ip_address(ip)
    rows = conn.execute(select(*_COLUMNS).order_by(blocks.c.created_at))
    return [Block(*r) for r in rows if address in ipaddress.ip_network(r.network)]


def remove(conn: Connection, network: str, at: datetime) -> int:
    removed = conn.execute(update(blocks).where(blocks.c.network == network_of(network),
                                                _active(at)).values(removed_at=at)).rowcount
    if not removed:
        raise NotFound(f"no active block for {network}")
    return removed
