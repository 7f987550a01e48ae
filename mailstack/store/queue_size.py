"""How much is waiting in the outbound queue: what the metrics endpoint reports.

Why a query of its own: Prometheus asks every few seconds how many recipients wait and
since when (the ``mailstack_queue_*`` gauges, docs/operations.md's "queue stuck" alert), so
this is one aggregate over the status index, not the listing ``queue list`` prints.  A
recipient waits until it is delivered or bounced, whatever state it waits in (queued, being
delivered, or held by the operator).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from mailstack.store.queue import BOUNCED, DELIVERED
from mailstack.store.schema import outbound_messages as messages, outbound_recipients as rcpts


@dataclass(frozen=True)
class QueueSize:
    recipients: int
    oldest: datetime | None       # when the oldest waiting message was queued


def measure(conn: Connection) -> QueueSize:
    waiting = rcpts.c.status.notin_([DELIVERED, BOUNCED])
    count, oldest = conn.execute(
        select(func.count(rcpts.c.id), func.min(messages.c.created_at))
        .select_from(rcpts.join(messages)).where(waiting)).one()
    return QueueSize(count or 0, oldest)
