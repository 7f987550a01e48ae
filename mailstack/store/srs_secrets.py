"""The SRS secret kept in the database (``srs_secrets``), made on first use.

Why in the database: a secret in the configuration must be copied to every node by hand;
one made here is shared by every node on one PostgreSQL and survives restarts, so an SRS
address written by any node is reversed by all of them until it expires
(docs/configuration.md, ``[forwarding]``).  A secret in ``[forwarding] srs_secrets``
takes precedence and this table is not read.

Security: the secret is 32 random bytes (``secrets.token_urlsafe``), read only by
``service.py`` to build the ``srs.SRS`` it hands the policy and the router; nothing
prints or logs it.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mailstack.store.schema import srs_secrets as table


def ensure(conn: Connection, at: datetime) -> list[str]:
    """Every stored secret, newest first (the first signs); one is made when none is."""
    found = _stored(conn)
    if found:
        return found
    try:
        with conn.begin_nested():             # another node may make it at the same moment
            conn.execute(insert(table).values(generation=1, secret=secrets.token_urlsafe(32),
                                              created_at=at))
    except IntegrityError:
        pass
    return _stored(conn)


def _stored(conn: Connection) -> list[str]:
    query = select(table.c.secret).order_by(table.c.generation.desc())
    return [s for (s,) in conn.execute(query)]
