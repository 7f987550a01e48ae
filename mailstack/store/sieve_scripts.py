"""Customers' Sieve scripts (``sieve_scripts``): stored, listed, activated, renamed, deleted.

Why a module of its own: ManageSieve (``protocols/managesieve*.py``), the admin CLI
(``mailstack sieve``) and delivery (the interpreter reads ``active_script``) share one set
of rules -- the size and count limits of ``[sieve]``, at most one active script per
account (also kept by a partial unique index), the active script never deleted -- so a
script stored by either door is the same.  Scripts are checked (``sieve/scripts.py``)
before they come here; this module stores text.

Standards: RFC 5804 §2.6-§2.11 (PUTSCRIPT, LISTSCRIPTS, SETACTIVE, GETSCRIPT,
DELETESCRIPT, RENAMESCRIPT, HAVESPACE) for what each function refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store.errors import Conflict, NotFound, StoreError
from mailstack.store.schema import accounts, sieve_scripts as table


class TooManyScripts(StoreError):
    """The account has ``max_scripts`` already (ManageSieve ``QUOTA/MAXSCRIPTS``)."""


class ScriptTooLarge(StoreError):
    """Over ``max_script_size`` octets (ManageSieve ``QUOTA/MAXSIZE``)."""


class ScriptActive(StoreError):
    """The active script cannot be deleted (ManageSieve ``ACTIVE``, RFC 5804 §2.10)."""


@dataclass(frozen=True)
class Limits:
    max_script_size: int      # octets of UTF-8
    max_scripts: int          # per account


@dataclass(frozen=True)
class ScriptInfo:
    name: str
    active: bool
    size: int
    updated_at: datetime


def list_scripts(conn: Connection, account_id: int) -> list[ScriptInfo]:
    rows = conn.execute(select(table.c.name, table.c.active, table.c.content,
                               table.c.updated_at)
                        .where(table.c.account_id == account_id).order_by(table.c.name))
    return [ScriptInfo(r.name, r.active, len(r.content.encode("utf-8")), r.updated_at)
            for r in rows]


def get_script(conn: Connection, account_id: int, name: str) -> str:
    content = conn.execute(select(table.c.content).where(
        table.c.account_id == account_id, table.c.name == name)).scalar()
    if content is None:
        raise NotFound(name)
    return content


def active_script(conn: Connection, account_id: int) -> tuple[str, str] | None:
    """(name, content) of the script delivery runs for the account, or None."""
    row = conn.execute(select(table.c.name, table.c.content).where(
        table.c.account_id == account_id, table.c.active)).first()
    return None if row is None else (row.name, row.content)


def have_space(conn: Connection, account_id: int, name: str, size: int, limits: Limits) -> None:
    """Raises ScriptTooLarge or TooManyScripts when ``name`` of ``size`` octets would not
    fit (RFC 5804 §2.3); replacing a script of that name adds none to the count."""
    if size > limits.max_script_size:
        raise ScriptTooLarge(name)
    if _exists(conn, account_id, name):
        return
    count = conn.execute(select(func.count()).select_from(table)
                         .where(table.c.account_id == account_id)).scalar()
    if count >= limits.max_scripts:
        raise TooManyScripts(name)


def put_script(conn: Connection, account_id: int, name: str, content: str, at: datetime,
               limits: Limits) -> None:
    """Store ``content`` as ``name``, replacing a script of that name (its active flag
    kept, RFC 5804 §2.6).  The account's row is locked first (PostgreSQL), so two
    sessions cannot both take the last free place."""
    _lock_account(conn, account_id)
    have_space(conn, account_id, name, len(content.encode("utf-8")), limits)
    changed = conn.execute(update(table).where(table.c.account_id == account_id,
                                               table.c.name == name)
                           .values(content=content, updated_at=at)).rowcount
    if not changed:
        conn.execute(insert(table).values(account_id=account_id, name=name, content=content,
                                          active=False, created_at=at, updated_at=at))


def set_active(conn: Connection, account_id: int, name: str, at: datetime) -> None:
    """Make ``name`` the active script; "" deactivates all (RFC 5804 §2.8)."""
    _lock_account(conn, account_id)
    if name and not _exists(conn, account_id, name):
        raise NotFound(name)
    conn.execute(update(table).where(table.c.account_id == account_id, table.c.active,
                                     table.c.name != name).values(active=False, updated_at=at))
    if name:
        conn.execute(update(table).where(table.c.account_id == account_id,
                                         table.c.name == name, ~table.c.active)
                     .values(active=True, updated_at=at))


def delete_script(conn: Connection, account_id: int, name: str) -> None:
    row = conn.execute(select(table.c.id, table.c.active).where(
        table.c.account_id == account_id, table.c.name == name)).first()
    if row is None:
        raise NotFound(name)
    if row.active:
        raise ScriptActive(name)
    conn.execute(delete(table).where(table.c.id == row.id))


def rename_script(conn: Connection, account_id: int, old: str, new: str, at: datetime) -> None:
    """NotFound for ``old``, Conflict when ``new`` exists (RFC 5804 §2.11.1)."""
    if not _exists(conn, account_id, old):
        raise NotFound(old)
    if old == new:
        return
    if _exists(conn, account_id, new):
        raise Conflict(new)
    conn.execute(update(table).where(table.c.account_id == account_id, table.c.name == old)
                 .values(name=new, updated_at=at))


def _exists(conn: Connection, account_id: int, name: str) -> bool:
    return conn.execute(select(table.c.id).where(
        table.c.account_id == account_id, table.c.name == name)).first() is not None


def _lock_account(conn: Connection, account_id: int) -> None:
    """Serialise the account's script changes (FOR UPDATE; SQLite has one writer anyway)."""
    found = conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)
                         .with_for_update()).first()
    if found is None:
        raise NotFound("account")


_CONTENT = select(table.c.content).where(table.c.id == bindparam("id"))
_NAME = select(table.c.name).where(table.c.id == bindparam("id"))


def content(conn: Connection, script_id: int) -> str:
    return conn.execute(_CONTENT, {"id": script_id}).scalar() or ""


def name_of(conn: Connection, script_id: int) -> str:
    """The script's name, for the log ("?" when it was deleted meanwhile)."""
    return conn.execute(_NAME, {"id": script_id}).scalar() or "?"
