"""``mailstack policy show [--at DATE]``: what the servers do at a moment."""

from __future__ import annotations

from datetime import datetime, timezone

from mailstack import clock as clocks
from mailstack.cli import common
from mailstack.policy import phases


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise common.CommandError(f"--at: {text!r} is not an ISO date or date-time",
                                  common.EXIT_USAGE) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def show(args) -> None:
    config = common.load_config(args)
    at = _moment(args.at) if args.at else clocks.now(clocks.WallClock())
    common.emit(args, phases.in_force(config, at).rows(), ["setting", "in force"])


def register(groups) -> None:
    group = groups.add_parser("policy", help="the migration phases in force")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("show", help="print what is in force now or at --at DATE (UTC "
                                      "unless an offset is given)")
    p.add_argument("--at", help="e.g. 2027-03-01 or 2027-03-01T09:00:00+01:00")
    common.add_format(p)
    p.set_defaults(func=show)
