"""``mailstack sieve list|show|put|activate|deactivate|delete ADDRESS [NAME] [FILE|-]``.

Why: the support desk looks at, fixes or switches off a customer's filters without the
customer's password (a vacation reply left on, a rule filing everything away).  Thin over
the same store functions and the same check as ManageSieve (``store/sieve_scripts.py``,
``sieve/scripts.py``): ``put`` refuses what PUTSCRIPT refuses -- a syntax error (with its
line), an extension delivery does not run, a script over ``[sieve]`` max_script_size, one
script more than max_scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mailstack.cli.common import CommandError, add_format, emit, open_context, run
from mailstack.cli.directory import address_arg
from mailstack.sieve import scripts
from mailstack.store import directory, sieve_scripts as store
from mailstack.store.errors import NotFound


def _account(ctx, address: str) -> int:
    return run(ctx, directory.require_account, address_arg(address)).id


def _name(name: str) -> str:
    if not scripts.valid_name(name):
        raise CommandError(f"{name!r} is not a valid script name (RFC 5804 §1.6)")
    return name


def _script(ctx, fn, args, *rest):
    """``fn`` on the account's script ``args.name``; its absence as one line."""
    try:
        return ctx.db.run_sync(fn, _account(ctx, args.address), _name(args.name), *rest)
    except NotFound:
        raise CommandError(f"{args.address} has no script {args.name!r}") from None


def _read(file: str) -> str:
    """The script from ``file`` or standard input (``-``), as UTF-8."""
    if file != "-":
        return Path(file).read_bytes().decode("utf-8")
    stdin = getattr(sys.stdin, "buffer", None)
    return stdin.read().decode("utf-8") if stdin is not None else sys.stdin.read()


def sieve_list(args):
    ctx = open_context(args)
    listed = run(ctx, store.list_scripts, _account(ctx, args.address))
    emit(args, [{"name": s.name, "active": s.active, "size": s.size,
                 "updated": s.updated_at.isoformat()} for s in listed],
         ["name", "active", "size", "updated"])


def sieve_show(args):
    ctx = open_context(args)
    sys.stdout.write(_script(ctx, store.get_script, args))


def sieve_put(args):
    ctx = open_context(args)
    account = _account(ctx, args.address)
    try:
        content = _read(args.file)
    except OSError as e:
        raise CommandError(f"{args.file}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{args.file}: a Sieve script must be UTF-8 (RFC 5228 §2.1)") from None
    try:
        scripts.check(content)
    except scripts.ScriptError as e:
        raise CommandError(f"{args.file}: {e}") from None
    limits = store.Limits(ctx.config.sieve.max_script_size, ctx.config.sieve.max_scripts)
    try:
        run(ctx, store.put_script, account, _name(args.name), content, ctx.now(), limits)
    except store.ScriptTooLarge:
        raise CommandError(f"over [sieve] max_script_size ({limits.max_script_size} octets)") \
            from None
    except store.TooManyScripts:
        raise CommandError(f"the account has [sieve] max_scripts ({limits.max_scripts}) "
                           "scripts already") from None
    if args.activate:
        run(ctx, store.set_active, account, args.name, ctx.now())
    print(f"stored {args.name!r} for {args.address}" + (" (active)" if args.activate else ""))


def sieve_activate(args):
    ctx = open_context(args)
    _script(ctx, store.set_active, args, ctx.now())
    print(f"{args.name!r} is the active script of {args.address}")


def sieve_deactivate(args):
    ctx = open_context(args)
    run(ctx, store.set_active, _account(ctx, args.address), "", ctx.now())
    print(f"no script is active for {args.address}: mail is kept in INBOX")


def sieve_delete(args):
    ctx = open_context(args)
    try:
        _script(ctx, store.delete_script, args)
    except store.ScriptActive:
        raise CommandError(f"{args.name!r} is active: deactivate it first") from None
    print(f"deleted {args.name!r} of {args.address}")


def register(groups) -> None:
    group = groups.add_parser("sieve", help="customers' Sieve filters and vacation replies"
                              ).add_subparsers(dest="verb", required=True, metavar="VERB")
    p = group.add_parser("list", help="an account's scripts, the active one marked")
    p.add_argument("address")
    add_format(p)
    p.set_defaults(func=sieve_list)
    for verb, func, what in (("show", sieve_show, "print a script"),
                             ("activate", sieve_activate, "make a script the active one"),
                             ("delete", sieve_delete, "delete a script (not the active one)")):
        p = group.add_parser(verb, help=what)
        p.add_argument("address")
        p.add_argument("name")
        p.set_defaults(func=func)
    p = group.add_parser("put", help="store a script, checked as ManageSieve's PUTSCRIPT")
    p.add_argument("address")
    p.add_argument("name")
    p.add_argument("file", help="the script's file, or - for standard input")
    p.add_argument("--activate", action="store_true", help="and make it the active one")
    p.set_defaults(func=sieve_put)
    p = group.add_parser("deactivate", help="no active script: mail is kept in INBOX")
    p.add_argument("address")
    p.set_defaults(func=sieve_deactivate)
