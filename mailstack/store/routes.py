"""Where an envelope recipient's mail goes: is the domain ours, which enabled accounts an
address reaches (an alias: several, and the remote addresses it forwards to), their room,
and what delivery needs to know of each without asking again (SPAM Blocker, sender lists,
the active Sieve script's version).

Why a module of its own: this is the one read of every RCPT on port 25 and submission, so
it is built for cost -- the statements once, with bind parameters; an RCPT to an account
is one query -- while ``directory.py`` manages who we host.

Standards: RFC 5321 §4.1.1.3 (RCPT), §2.4 (domains compare case-insensitively).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, exists, select
from sqlalchemy.engine import Connection

from mailstack.store.directory import is_hosted, mailbox_usage, quota_of
from mailstack.store.schema import accounts, aliases, domains, sieve_scripts, spam_senders


@dataclass(frozen=True)
class Recipients:
    """What an address delivers to: the enabled accounts it reaches (an alias: several),
    and the remote addresses an alias forwards to (``forward``: each gets a copy through
    the outbound queue, with an SRS sender: delivery/routing.py)."""

    account_ids: tuple[int, ...] = ()
    forward: tuple[str, ...] = ()
    # Of ``account_ids``: those with SPAM Blocker on, those with sender list entries.  A
    # delivery looks at their settings again only when these say it may matter
    # (delivery/spam_copies.py): clean mail to accounts without lists costs no statement.
    spam_blocker: tuple[int, ...] = ()
    spam_lists: tuple[int, ...] = ()
    # Of ``account_ids``: those with an active Sieve script, as (account id, script id,
    # its update time): the version delivery runs (delivery/sieve_delivery.py), compiled
    # once per process; no statement more at delivery, with a script or without.
    sieve: tuple[tuple[int, int, datetime], ...] = ()

    @property
    def exists(self) -> bool:
        return bool(self.account_ids or self.forward)


@dataclass(frozen=True)
class Route:
    """Where an envelope recipient goes: is its domain ours, and who receives it."""

    hosted: bool
    recipients: Recipients = Recipients()
    room: int | None = None        # bytes left in the fullest recipient mailbox; None: no quota


# Statements asked once per RCPT are built once (bind parameters): building one per call
# costs more Python time than running it (see mailboxes._INSERT_MESSAGE).
_LISTED = (exists().where(spam_senders.c.account_id == accounts.c.id)
           .correlate(accounts).label("listed"))
_ACTIVE_SCRIPT = (sieve_scripts.c.account_id == accounts.c.id, sieve_scripts.c.active)
_SCRIPT_ID = (select(sieve_scripts.c.id).where(*_ACTIVE_SCRIPT).correlate(accounts)
              .scalar_subquery().label("script_id"))
_SCRIPT_AT = (select(sieve_scripts.c.updated_at).where(*_ACTIVE_SCRIPT).correlate(accounts)
              .scalar_subquery().label("script_at"))
_ACCOUNT_STATE = select(accounts.c.id, accounts.c.enabled, accounts.c.spam_blocker,
                        _LISTED, _SCRIPT_ID, _SCRIPT_AT
                        ).where(accounts.c.address == bindparam("address"))


# The hosted-domain test, the account and its quota in one statement: an RCPT to an
# account (the common case) costs one query, not three (issue 16).
_ROUTE = (select(domains.c.id, accounts.c.id, accounts.c.enabled, accounts.c.quota_bytes,
                 accounts.c.spam_blocker, _LISTED, _SCRIPT_ID, _SCRIPT_AT)
          .select_from(domains.outerjoin(accounts, accounts.c.address == bindparam("address")))
          .where(domains.c.name == bindparam("domain")))


def route(conn: Connection, address: str) -> Route:
    """One read for an RCPT: the hosted-domain test and the recipient lookup together."""
    row = conn.execute(_ROUTE, {"address": address,
                                "domain": address.rpartition("@")[2]}).first()
    if row is None:
        return Route(False)
    _domain, account_id, enabled, quota, blocker, listed, script_id, script_at = row
    if account_id is None:                  # an alias, or nobody
        recipients = resolve(conn, address)
        return Route(True, recipients, room_left(conn, recipients.account_ids))
    if not enabled:
        return Route(True, Recipients(()))
    room = None if quota is None else quota - mailbox_usage(conn, account_id)[1]
    return Route(True, _recipients([(account_id, blocker, listed, _version(script_id, script_at))]),
                 room)


def _recipients(found, forward=()) -> Recipients:
    """Recipients of [(account id, SPAM Blocker on, has list entries, (its active Sieve
    script's id, update time) or None)], each once."""
    found = list({account[0]: account for account in found}.values())
    return Recipients(tuple(i for i, *_ in found), tuple(forward),
                      tuple(i for i, blocker, *_ in found if blocker),
                      tuple(i for i, _, listed, _ in found if listed),
                      tuple((i, *script) for i, *_, script in found if script))


def _version(script_id, updated_at):
    return None if script_id is None else (script_id, updated_at)


def room_left(conn: Connection, account_ids) -> int | None:
    """The smallest quota headroom among the accounts (None when none has a quota)."""
    rooms = []
    for account_id in account_ids:
        quota = quota_of(conn, account_id)
        if quota is not None:
            rooms.append(quota - mailbox_usage(conn, account_id)[1])
    return min(rooms) if rooms else None


def resolve(conn: Connection, address: str) -> Recipients:
    """Where mail for ``address`` goes: the enabled account itself, or an alias's targets
    (its enabled accounts, and the remote addresses it forwards to)."""
    row = conn.execute(_ACCOUNT_STATE, {"address": address}).first()
    if row is not None:
        return _recipients([(row.id, row.spam_blocker, row.listed,
                                 _version(row.script_id, row.script_at))]
                           if row.enabled else [])
    targets = [t for (t,) in conn.execute(select(aliases.c.target)
                                           .where(aliases.c.address == address))]
    local, remote = [], []
    for target in targets:
        account = conn.execute(_ACCOUNT_STATE, {"address": target}).first()
        if account is not None:
            if account.enabled:
                local.append((account.id, account.spam_blocker, account.listed,
                              _version(account.script_id, account.script_at)))
        elif not is_hosted(conn, target.rpartition("@")[2]):
            remote.append(target)      # a forward (a domain hosted since: nobody, skipped)
    return _recipients(local, remote)
