"""``mailstack policy show [--at DATE] [--tables]``: what the servers do at a moment, and
the stage tables each SMTP port runs (``policy/mx.py``, ``policy/submission.py``) as this
configuration builds them."""

from __future__ import annotations

from datetime import datetime, timezone

from mailstack import clock as clocks
from mailstack.cli import common
from mailstack.policy import mx, phases, submission


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
    if args.tables:
        return common.emit(args, stage_tables(config, at), ["port", "stage", "checks"])
    common.emit(args, phases.in_force(config, at).rows(), ["setting", "in force"])


def stage_tables(config, at: datetime) -> list[dict]:
    """Each SMTP port's tables, built as the server builds them (nothing is looked up)."""
    clock = clocks.FixedClock(at)
    ports = (("25", mx.port_policy), ("587/465", submission.port_policy))
    return [{"port": port, **row} for port, build in ports
            for row in build(None, clock, None, config).tables.rows()]


def register(groups) -> None:
    group = groups.add_parser("policy", help="the migration phases in force")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    p = verbs.add_parser("show", help="print what is in force now or at --at DATE (UTC "
                                      "unless an offset is given)")
    p.add_argument("--at", help="e.g. 2027-03-01 or 2027-03-01T09:00:00+01:00")
    p.add_argument("--tables", action="store_true",
                   help="print the stage tables of port 25 and submission instead")
    common.add_format(p)
    p.set_defaults(func=show)
