"""``mailstack quota recalc [ADDRESS|--all]``: each account's usage against its quota.

Why a "recalc" that recalculates nothing: Dovecot keeps a quota counter that can drift
and ``doveadm quota recalc`` rebuilds it.  Here usage is never cached: every quota check
(RCPT, DATA, APPEND, COPY) sums the stored messages' sizes in its own transaction
(``store/directory.py`` ``mailbox_usage``, ``room_left``), so it cannot drift.  The command
an operator coming from Dovecot types therefore reports that sum, per account, now.
"""

from __future__ import annotations

from mailstack.cli.common import CommandError, add_format, emit, open_context, run
from mailstack.cli.directory import address_arg
from mailstack.store import directory


def quota_recalc(args):
    if (args.address is None) == (not args.all):
        raise CommandError("name an account or --all (not both)")
    ctx = open_context(args)
    address = address_arg(args.address) if args.address else None
    rows = []
    for account, count, size, quota in run(ctx, directory.usage_by_account, address):
        rows.append({"address": account, "messages": count, "bytes": size,
                     "quota": "unlimited" if quota is None else quota,
                     "used": "-" if not quota else f"{100 * size / quota:.1f}%",
                     "over": quota is not None and size > quota})
    emit(args, rows, ["address", "messages", "bytes", "quota", "used", "over"])
    if args.format == "table":
        print("usage is summed from the stored messages at every check: there is no cached "
              "count to rebuild")


def register(groups) -> None:
    group = groups.add_parser("quota", help="storage quotas (set them with `account quota`)"
                              ).add_subparsers(dest="verb", required=True, metavar="VERB")
    p = group.add_parser("recalc", help="each account's usage now, against its quota")
    p.add_argument("address", nargs="?")
    p.add_argument("--all", action="store_true", help="every account")
    add_format(p)
    p.set_defaults(func=quota_recalc)
