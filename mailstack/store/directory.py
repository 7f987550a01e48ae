"""Domains, accounts and aliases: who we host (where their mail goes: ``routes.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from mailstack.store import mailboxes
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import accounts, aliases, domains, folders, messages


@dataclass(frozen=True)
class AccountInfo:
    id: int
    address: str
    enabled: bool
    password_hash: str
    created_at: datetime
    sends_as_any: bool = False      # the sender rule "any" (``sends_as_any``)


_QUOTA = select(accounts.c.quota_bytes).where(accounts.c.id == bindparam("account_id"))


def quota_of(conn: Connection, account_id: int) -> int | None:
    return conn.execute(_QUOTA, {"account_id": account_id}).scalar()


def set_quota(conn: Connection, address: str, quota_bytes: int | None) -> None:
    _update_account(conn, address, quota_bytes=quota_bytes)


def _domain_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(domains.c.id).where(domains.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"domain {name} is not hosted here")
    return found


def add_domain(conn: Connection, name: str, at: datetime) -> int:
    if conn.execute(select(domains.c.id).where(domains.c.name == name)).scalar() is not None:
        raise Conflict(f"domain {name} already exists")
    return conn.execute(insert(domains).values(name=name, created_at=at)).inserted_primary_key[0]


def ensure_domains(conn: Connection, names, at: datetime) -> None:
    for name in names:
        if not is_hosted(conn, name):
            add_domain(conn, name, at)


def list_domains(conn: Connection) -> list[tuple[str, int]]:
    """Each hosted domain with its number of accounts."""
    query = (select(domains.c.name, func.count(accounts.c.id))
             .select_from(domains.outerjoin(accounts))
             .group_by(domains.c.name).order_by(domains.c.name))
    return [tuple(row) for row in conn.execute(query)]


def delete_domain(conn: Connection, name: str, with_accounts: bool = False) -> tuple[int, int]:
    """Stop hosting ``name``: (accounts, aliases) deleted with it.  Refused (Conflict) while
    it has any, unless ``with_accounts``: then they go too, mail included, in this one
    transaction (``delete_account`` for each, which also drops aliases elsewhere that
    point at them)."""
    domain_id = _domain_id(conn, name)
    owned = [a for (a,) in conn.execute(select(accounts.c.address)
                                         .where(accounts.c.domain_id == domain_id))]
    alias_count = conn.execute(select(func.count(aliases.c.id))
                               .where(aliases.c.domain_id == domain_id)).scalar()
    if (owned or alias_count) and not with_accounts:
        raise Conflict(f"domain {name} still has {len(owned)} account(s) and {alias_count} "
                       "alias(es): delete them first, or repeat with --with-accounts --yes")
    for address in owned:
        delete_account(conn, address)
    conn.execute(delete(aliases).where(aliases.c.domain_id == domain_id))
    conn.execute(delete(domains).where(domains.c.id == domain_id))
    return len(owned), alias_count


_HOSTED = select(domains.c.id).where(domains.c.name == bindparam("name"))


def is_hosted(conn: Connection, domain: str) -> bool:
    return conn.execute(_HOSTED, {"name": domain}).scalar() is not None


def add_account(conn: Connection, address: str, password_hash: str, at: datetime,
                spam_blocker: bool = False) -> int:
    """A new account with its default folders; ``spam_blocker``: SPAM Blocker on from the
    start (``[spam] blocker_default``)."""
    domain_id = _domain_id(conn, address.rpartition("@")[2])
    if get_account(conn, address) is not None:
        raise Conflict(f"account {address} already exists")
    if conn.execute(select(aliases.c.id).where(aliases.c.address == address)).first():
        raise Conflict(f"{address} is already an alias")
    account_id = conn.execute(insert(accounts).values(
        domain_id=domain_id, address=address, password_hash=password_hash,
        enabled=True, created_at=at, spam_blocker=spam_blocker)).inserted_primary_key[0]
    mailboxes.create_default_folders(conn, account_id, at)
    return account_id


# Built once: every login of every protocol looks its account up (issue 16).
_ACCOUNT_BY_ADDRESS = select(accounts.c.id, accounts.c.address, accounts.c.enabled,
                             accounts.c.password_hash, accounts.c.created_at,
                             accounts.c.may_send_as_any).where(accounts.c.address == bindparam("address"))


def get_account(conn: Connection, address: str) -> AccountInfo | None:
    row = conn.execute(_ACCOUNT_BY_ADDRESS, {"address": address}).first()
    return AccountInfo(*row) if row else None


def require_account(conn: Connection, address: str) -> AccountInfo:
    account = get_account(conn, address)
    if account is None:
        raise NotFound(f"no account {address}")
    return account


def list_accounts(conn: Connection, domain: str | None = None) -> list[AccountInfo]:
    query = select(accounts.c.id, accounts.c.address, accounts.c.enabled,
                   accounts.c.password_hash, accounts.c.created_at).order_by(accounts.c.address)
    if domain is not None:
        query = query.where(accounts.c.domain_id == _domain_id(conn, domain))
    return [AccountInfo(*row) for row in conn.execute(query)]


def mailbox_usage(conn: Connection, account_id: int) -> tuple[int, int]:
    """(message count, total bytes) over every folder of the account."""
    row = conn.execute(select(func.count(messages.c.id), func.coalesce(func.sum(messages.c.size), 0))
                       .select_from(messages.join(folders))
                       .where(folders.c.account_id == account_id)).first()
    return int(row[0]), int(row[1])


def usage_by_account(conn: Connection, address: str | None = None
                     ) -> list[tuple[str, int, int, int | None]]:
    """(address, messages, bytes, quota or None) of every account (or one), summed now from
    the stored messages: usage is never cached, so there is nothing to drift or rebuild."""
    query = (select(accounts.c.address, func.count(messages.c.id),
                    func.coalesce(func.sum(messages.c.size), 0), accounts.c.quota_bytes)
             .select_from(accounts.outerjoin(folders).outerjoin(messages))
             .group_by(accounts.c.id, accounts.c.address, accounts.c.quota_bytes)
             .order_by(accounts.c.address))
    if address is not None:
        require_account(conn, address)
        query = query.where(accounts.c.address == address)
    return [(a, int(n), int(size), quota) for a, n, size, quota in conn.execute(query)]


def set_password_hash(conn: Connection, address: str, password_hash: str) -> None:
    _update_account(conn, address, password_hash=password_hash)


def replace_password_hash(conn: Connection, account_id: int, old: str, new: str) -> bool:
    """Swap a hash only if it is still the one that was verified (a login upgrade)."""
    result = conn.execute(update(accounts)
                          .where(accounts.c.id == account_id, accounts.c.password_hash == old)
                          .values(password_hash=new))
    return result.rowcount == 1


def set_enabled(conn: Connection, address: str, enabled: bool) -> None:
    _update_account(conn, address, enabled=enabled)


def _update_account(conn: Connection, address: str, **values) -> None:
    result = conn.execute(update(accounts).where(accounts.c.address == address).values(**values))
    if result.rowcount != 1:
        raise NotFound(f"no account {address}")


def delete_account(conn: Connection, address: str) -> None:
    account = require_account(conn, address)
    conn.execute(delete(aliases).where(aliases.c.target == address))
    folder_ids = select(folders.c.id).where(folders.c.account_id == account.id)
    conn.execute(delete(messages).where(messages.c.folder_id.in_(folder_ids)))
    conn.execute(delete(folders).where(folders.c.account_id == account.id))
    conn.execute(delete(accounts).where(accounts.c.id == account.id))


def add_alias(conn: Connection, address: str, target: str) -> bool:
    """``address`` delivers to ``target`` too: an account here, or a remote address it
    forwards to.  Returns whether the target is remote (forwarded)."""
    domain_id = _domain_id(conn, address.rpartition("@")[2])
    if get_account(conn, address) is not None:
        raise Conflict(f"{address} is an account; an alias cannot shadow it")
    # A target in a domain we host must be an account; any other is forwarded to (its
    # copy leaves with an SRS sender, so the destination's SPF check passes: srs.py).
    if is_hosted(conn, target.rpartition("@")[2]) and get_account(conn, target) is None:
        raise NotFound(f"alias target {target} is not an account here")
    exists = conn.execute(select(aliases.c.id).where(
        aliases.c.address == address, aliases.c.target == target)).first()
    if exists:
        raise Conflict(f"alias {address} -> {target} already exists")
    conn.execute(insert(aliases).values(domain_id=domain_id, address=address, target=target))
    return not is_hosted(conn, target.rpartition("@")[2])


def list_aliases(conn: Connection, domain: str | None = None) -> list[tuple[str, str]]:
    query = select(aliases.c.address, aliases.c.target).order_by(aliases.c.address, aliases.c.target)
    if domain is not None:
        query = query.where(aliases.c.domain_id == _domain_id(conn, domain))
    return [tuple(row) for row in conn.execute(query)]


def delete_alias(conn: Connection, address: str, target: str | None = None) -> int:
    query = delete(aliases).where(aliases.c.address == address)
    if target is not None:
        query = query.where(aliases.c.target == target)
    removed = conn.execute(query).rowcount
    if not removed:
        raise NotFound(f"no alias {address}" + (f" -> {target}" if target else ""))
    return removed


def may_send_as(conn: Connection, account_id: int, address: str) -> bool:
    """Whether an authenticated account may use ``address`` as its envelope sender."""
    return sends_as_any(conn, account_id) or address in sender_addresses(conn, account_id)


def sends_as_any(conn: Connection, account_id: int) -> bool:
    """The sender rule "any": the account may use any envelope sender."""
    query = select(accounts.c.may_send_as_any).where(accounts.c.id == account_id)
    return bool(conn.execute(query).scalar())


def set_send_as_any(conn: Connection, address: str, allowed: bool) -> None:
    _update_account(conn, address, may_send_as_any=allowed)


def sender_addresses(conn: Connection, account_id: int) -> list[str]:
    """The addresses an account may send as: its own and every alias that reaches it."""
    own = conn.execute(select(accounts.c.address).where(accounts.c.id == account_id)).scalar()
    if own is None:
        return []
    found = [a for (a,) in conn.execute(select(aliases.c.address).where(aliases.c.target == own))]
    return [own, *found]


@dataclass
class ImportResult:
    imported: int = 0
    unchanged: int = 0
    conflicts: list = None
    domains_created: int = 0
    aliases_created: int = 0

    def __post_init__(self):
        self.conflicts = self.conflicts or []


def import_accounts(conn: Connection, accounts_, at: datetime, *, with_aliases: bool,
                    spam_blocker: bool = False) -> ImportResult:
    """Create accounts (and their domains, and aliases) keeping their hashes; one transaction.

    ``accounts_``: [(line, address, password_hash, aliases)].  Idempotent: an account that
    exists with the same hash is unchanged; with a different hash it is left alone and
    reported, never overwritten.
    """
    result = ImportResult()
    for line, address, password_hash, alias_list in accounts_:
        domain = address.rpartition("@")[2]
        if not is_hosted(conn, domain):
            add_domain(conn, domain, at)
            result.domains_created += 1
        existing = get_account(conn, address)
        if existing is None:
            add_account(conn, address, password_hash, at, spam_blocker)
            result.imported += 1
        elif existing.password_hash == password_hash:
            result.unchanged += 1
        else:
            result.conflicts.append((line, f"{address} exists with another password; not changed"))
        for alias in alias_list if with_aliases else ():
            if not is_hosted(conn, alias.rpartition("@")[2]):
                add_domain(conn, alias.rpartition("@")[2], at)
                result.domains_created += 1
            known = conn.execute(select(aliases.c.id).where(
                aliases.c.address == alias, aliases.c.target == address)).first()
            if not known and get_account(conn, alias) is None:
                add_alias(conn, alias, address)
                result.aliases_created += 1
    return result
