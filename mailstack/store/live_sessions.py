"""Who is logged in now, across the nodes sharing the database (``live_sessions``).

Why in the database: ``mailstack who`` and ``kick`` run as separate commands and must see
every node; each node records its own logged-in connections here and polls for the kicks
asked of them (``protocols/live_sessions.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store.schema import live_sessions as table


@dataclass(frozen=True)
class LiveSession:
    id: int
    node: str
    protocol: str
    username: str
    client_ip: str
    started_at: datetime


# Built once: every login of every protocol opens and closes a row (issue 16).
_OPEN = insert(table)
_CLOSE = delete(table).where(table.c.id == bindparam("session_id"))


def open_session(conn: Connection, node: str, protocol: str, username: str, client_ip: str,
                 at: datetime) -> int:
    return conn.execute(_OPEN, {"node": node, "protocol": protocol, "username": username,
                                "client_ip": client_ip, "started_at": at, "kick": False}
                        ).inserted_primary_key[0]


def close_session(conn: Connection, session_id: int) -> None:
    conn.execute(_CLOSE, {"session_id": session_id})


def clear_node(conn: Connection, node: str) -> int:
    """Forget every session of ``node`` (at its start: leftovers of a crash; at its stop)."""
    return conn.execute(delete(table).where(table.c.node == node)).rowcount


def listing(conn: Connection, username: str | None = None) -> list[LiveSession]:
    query = select(table.c.id, table.c.node, table.c.protocol, table.c.username,
                   table.c.client_ip, table.c.started_at).order_by(table.c.started_at, table.c.id)
    if username is not None:
        query = query.where(table.c.username == username)
    return [LiveSession(*row) for row in conn.execute(query)]


def request_kick(conn: Connection, username: str) -> int:
    """Ask the nodes to close every session of ``username``; how many there are."""
    return conn.execute(update(table).where(table.c.username == username)
                        .values(kick=True)).rowcount


def kicked(conn: Connection, node: str) -> list[int]:
    """The sessions of ``node`` that a kick asks to close."""
    return [row.id for row in conn.execute(
        select(table.c.id).where(table.c.node == node, table.c.kick.is_(True)))]
