"""``mailstack domain|account|alias …``: manage who we host."""

from __future__ import annotations

from mailstack import addresses
from mailstack.cli.common import CommandError, add_format, emit, open_context, read_password
from mailstack.cli import account_import, spam_blocker
from mailstack.cli.common import run as _run
from mailstack.store import directory, logins, spam_settings


def address_arg(text: str) -> str:
    try:
        return addresses.normalise(text)
    except addresses.AddressError as e:
        raise CommandError(f"{text!r} is not a valid address: {e}") from None


def domain_arg(text: str) -> str:
    try:
        return addresses.parse_domain(text)
    except addresses.AddressError:
        raise CommandError(f"{text!r} is not a valid domain name") from None


def domain_add(args):
    ctx = open_context(args)
    name = domain_arg(args.domain)
    if name in ctx.config.domains.hosted:   # open_context has just written it
        print(f"domain {name} is hosted ([domains] hosted in the configuration)")
        return
    _run(ctx, directory.add_domain, name, ctx.now())
    print(f"domain {name} added")


def domain_list(args):
    ctx = open_context(args)
    rows = [{"domain": name, "accounts": count}
            for name, count in _run(ctx, directory.list_domains)]
    emit(args, rows, ["domain", "accounts"])


def domain_delete(args):
    ctx = open_context(args)
    name = domain_arg(args.domain)
    if name in ctx.config.domains.hosted:
        raise CommandError(f"domain {name} is in [domains] hosted: remove it from the "
                           "configuration first (every command writes that list back)")
    if args.with_accounts and not args.yes:
        raise CommandError(f"deleting {name} with its accounts removes all their mail: "
                           "repeat with --yes")
    owned, alias_count = _run(ctx, directory.delete_domain, name, args.with_accounts)
    print(f"domain {name} deleted" + (f" with {owned} account(s) and {alias_count} alias(es)"
                                      if owned or alias_count else ""))


def account_add(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    password = read_password(args, min_length=ctx.config.auth.min_password_length)
    _run(ctx, directory.add_account, address, ctx.hasher().hash(password), ctx.now(),
         ctx.config.spam.blocker_default)
    print(f"account {address} added")


def account_list(args):
    ctx = open_context(args)
    domain = domain_arg(args.domain) if args.domain else None
    rows = [{"address": a.address, "enabled": a.enabled, "created": a.created_at.isoformat()}
            for a in _run(ctx, directory.list_accounts, domain)]
    emit(args, rows, ["address", "enabled", "created"])


def account_show(args):
    ctx = open_context(args)
    address = address_arg(args.address)

    def gather(conn):
        account = directory.require_account(conn, address)
        count, size = directory.mailbox_usage(conn, account.id)
        recent = logins.recent(conn, account_id=account.id, limit=5)
        quota = directory.quota_of(conn, account.id)
        any_sender = directory.sends_as_any(conn, account.id)
        aliases = directory.sender_addresses(conn, account.id)[1:]
        spam = (spam_settings.settings(conn, account.id),
                *(spam_settings.entries(conn, account.id, k) for k in spam_settings.LISTS))
        return account, count, size, recent, quota, any_sender, aliases, spam

    account, count, size, recent, quota, any_sender, aliases, spam = _run(ctx, gather)
    scheme = ctx.hasher().context.identify(account.password_hash) or "unknown"
    row = {"address": account.address, "enabled": account.enabled,
           "created": account.created_at.isoformat(), "hash_scheme": scheme,
           "messages": count, "bytes": size,
           "quota": "unlimited" if quota is None else quota,
           "sender_rule": "any" if any_sender else "own", "aliases": aliases,
           "spam_blocker": spam[0].blocker, "spam_tag_subject": spam[0].tag_subject,
           "spam_allow": spam[1], "spam_block": spam[2],
           "recent_logins": [{"at": e.at.isoformat(), "protocol": e.protocol, "ip": e.client_ip,
                              "tls": e.tls, "success": e.success} for e in recent]}
    if args.format == "json":
        emit(args, row, [])
        return
    for key in ("address", "enabled", "created", "hash_scheme", "messages", "bytes", "quota",
                "sender_rule"):
        print(f"{key + ':':<13} {row[key]}")
    print(f"{'aliases:':<13} {', '.join(aliases) or 'none'}")
    print(f"{'spam_blocker:':<13} {spam_blocker.describe(spam[0])}")
    print(f"{'spam_allow:':<13} {', '.join(spam[1]) or 'none'}")
    print(f"{'spam_block:':<13} {', '.join(spam[2]) or 'none'}")
    for e in row["recent_logins"]:
        outcome = "ok" if e["success"] else "FAILED"
        print(f"login:        {e['at']} {e['protocol']} from {e['ip']} "
              f"{'TLS' if e['tls'] else 'plaintext'} {outcome}")


def account_passwd(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    password = read_password(args, min_length=ctx.config.auth.min_password_length)
    _run(ctx, directory.set_password_hash, address, ctx.hasher().hash(password))
    print(f"password of {address} changed")


def account_enable(args, enabled=True):
    ctx = open_context(args)
    address = address_arg(args.address)
    _run(ctx, directory.set_enabled, address, enabled)
    print(f"account {address} {'enabled' if enabled else 'disabled'}")


def account_disable(args):
    account_enable(args, enabled=False)


def account_sender_rule(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    _run(ctx, directory.set_send_as_any, address, args.rule == "any")
    print(f"{address} may send as " + ("any address" if args.rule == "any"
                                       else "its own addresses and aliases only"))


def _size(text: str) -> int | None:
    text = text.strip().upper()
    if text in ("NONE", "UNLIMITED", "0"):
        return None
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3}
    try:
        size = (int(float(text[:-1]) * units[text[-1]]) if text[-1:] in units
                else int(text))
    except ValueError:
        size = -1
    if size <= 0:   # "0" is "none" above; a negative quota refused every message
        raise CommandError(f"{text!r} is not a size like 500M, 2G or none")
    return size


def account_quota(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    quota = _size(args.size)
    _run(ctx, directory.set_quota, address, quota)
    print(f"quota of {address}: " + ("unlimited" if quota is None else f"{quota} bytes"))


def account_delete(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    if not args.yes:
        raise CommandError(f"deleting {address} removes all its mail: repeat with --yes")
    _run(ctx, directory.delete_account, address)
    print(f"account {address} deleted")


def alias_add(args):
    ctx = open_context(args)
    address, target = address_arg(args.address), address_arg(args.target)
    remote = _run(ctx, directory.add_alias, address, target)
    print(f"alias {address} -> {target} added"
          + (" (forwarded: a remote address, the sender rewritten by SRS)" if remote else ""))


def alias_list(args):
    ctx = open_context(args)
    domain = domain_arg(args.domain) if args.domain else None
    rows = [{"alias": a, "target": t} for a, t in _run(ctx, directory.list_aliases, domain)]
    emit(args, rows, ["alias", "target"])


def alias_delete(args):
    ctx = open_context(args)
    address = address_arg(args.address)
    target = address_arg(args.target) if args.target else None
    removed = _run(ctx, directory.delete_alias, address, target)
    print(f"{removed} alias entr{'y' if removed == 1 else 'ies'} of {address} deleted")


def register(groups) -> None:
    _register_domain(groups)
    _register_account(groups)
    _register_alias(groups)


def _register_domain(groups) -> None:
    domain = groups.add_parser("domain", help="hosted domains").add_subparsers(
        dest="verb", required=True)
    p = domain.add_parser("add", help="host a new domain")
    p.add_argument("domain")
    p.set_defaults(func=domain_add)
    p = domain.add_parser("delete", help="stop hosting a domain (refused while it has "
                                         "accounts or aliases, unless --with-accounts --yes)")
    p.add_argument("domain")
    p.add_argument("--with-accounts", action="store_true",
                   help="delete its accounts (with their mail) and aliases too")
    p.add_argument("--yes", action="store_true", help="confirm --with-accounts")
    p.set_defaults(func=domain_delete)
    p = domain.add_parser("list", help="list hosted domains")
    add_format(p)
    p.set_defaults(func=domain_list)


def _register_account(groups) -> None:
    account = groups.add_parser("account", help="mail accounts").add_subparsers(
        dest="verb", required=True)
    account_import.register(account)
    spam_blocker.register(account)
    for verb, func, helptext in (("add", account_add, "create an account"),
                                 ("passwd", account_passwd, "set a new password")):
        p = account.add_parser(verb, help=helptext)
        p.add_argument("address")
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password from standard input instead of prompting")
        p.set_defaults(func=func)
    p = account.add_parser("list", help="list accounts")
    p.add_argument("--domain")
    add_format(p)
    p.set_defaults(func=account_list)
    p = account.add_parser("show", help="an account's state, usage and recent logins")
    p.add_argument("address")
    add_format(p)
    p.set_defaults(func=account_show)
    for verb, func in (("enable", account_enable), ("disable", account_disable)):
        p = account.add_parser(verb, help=f"{verb} logins and delivery")
        p.add_argument("address")
        p.set_defaults(func=func)
    p = account.add_parser("sender-rule", help="which envelope senders the account may use "
                                               "when it sends (own: its address and aliases)")
    p.add_argument("address")
    p.add_argument("rule", choices=["own", "any"])
    p.set_defaults(func=account_sender_rule)
    p = account.add_parser("quota", help="storage quota over all folders (500M, 2G, none)")
    p.add_argument("address")
    p.add_argument("size")
    p.set_defaults(func=account_quota)
    p = account.add_parser("delete", help="delete an account and all its mail")
    p.add_argument("address")
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=account_delete)


def _register_alias(groups) -> None:
    alias = groups.add_parser("alias", help="aliases").add_subparsers(dest="verb", required=True)
    p = alias.add_parser("add", help="deliver mail for ADDRESS to the account TARGET, or "
                                     "forward it to TARGET in a domain not hosted here "
                                     "(repeat for several targets)")
    p.add_argument("address")
    p.add_argument("target")
    p.set_defaults(func=alias_add)
    p = alias.add_parser("list", help="list aliases")
    p.add_argument("--domain")
    add_format(p)
    p.set_defaults(func=alias_list)
    p = alias.add_parser("delete", help="delete an alias (all its targets, or one)")
    p.add_argument("address")
    p.add_argument("target", nargs="?")
    p.set_defaults(func=alias_delete)
