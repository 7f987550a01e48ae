"""``mailstack trace``: a protocol trace of one address or IP, on every node, for a while.

Dovecot's rawlog for the support desk ("why can't she log in?"): the command writes a row
that every node polls within seconds (``protocols/traces.py``); each node then writes the
matching connections, commands and replies with passwords and message content masked, to
``state_dir/traces/<target>/`` on its own disk, and stops by itself when the minutes are up.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from mailstack.cli.common import CommandError, EXIT_USAGE, add_format, emit, open_context, \
    operator, run
from mailstack.store import traces

DEFAULT_MINUTES = 30
MAX_MINUTES = 24 * 60


def trace(args) -> None:
    if args.list:
        return _list(args)
    if not args.target:
        raise CommandError("name an address or IP to trace (or --list)", EXIT_USAGE)
    target = _target(args.target)
    ctx = open_context(args)
    if args.off:
        if not run(ctx, traces.stop, target, ctx.now()):
            raise CommandError(f"{target} is not being traced")
        print(f"trace of {target} ended; each node stops within seconds")
        return
    if not 1 <= args.minutes <= MAX_MINUTES:
        raise CommandError(f"--minutes must be 1 to {MAX_MINUTES}", EXIT_USAGE)
    now = ctx.now()
    row = run(ctx, traces.start, target, now, now + timedelta(minutes=args.minutes),
              operator(), args.reason or "")
    print(f"tracing {target} until {_when(row.until)} on every node (from within seconds); "
          f"files under {_directory(ctx, target)}/ on each node")


def _list(args) -> None:
    ctx = open_context(args)
    now = ctx.now()
    rows = []
    for t in run(ctx, traces.listing):
        files = sorted(_directory(ctx, t.target).glob("*.log"))
        state = "active" if t.active(now) else ("stopped" if t.stopped_at else "ended")
        rows.append({"target": t.target, "state": state,
                     "since": _when(t.started_at), "until": _when(t.until),
                     "by": t.added_by, "reason": t.reason,
                     "files": [str(f) for f in files] if args.format == "json" else len(files)})
    if not rows and args.format == "table":
        print("no traces")
        return
    emit(args, rows, ["target", "state", "since", "until", "by", "files", "reason"])
    if args.format == "table":
        for row in rows:
            for path in sorted(_directory(ctx, row["target"]).glob("*.log")):
                print(f"  {path}")


def _target(text: str) -> str:
    try:
        return traces.normalise_target(text)
    except ValueError as e:
        raise CommandError(f"{text!r}: {e}") from None


def _directory(ctx, target: str) -> Path:
    """This node's files of ``target`` (each node writes under its own state_dir)."""
    return ctx.config.path(ctx.config.server.state_dir) / "traces" / \
        traces.directory_name(target)


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def register(groups) -> None:
    p = groups.add_parser(
        "trace", help="trace the connections of an address or IP on every node (rawlog)")
    p.add_argument("target", nargs="?", metavar="ADDRESS|IP",
                   help="an account's address, an IP address or a network (2001:db8::/64)")
    p.add_argument("--minutes", type=int, default=DEFAULT_MINUTES,
                   help=f"how long (default {DEFAULT_MINUTES}, at most {MAX_MINUTES})")
    p.add_argument("--reason", help="why, shown by --list (a ticket number)")
    p.add_argument("--off", action="store_true", help="end the trace of ADDRESS|IP now")
    p.add_argument("--list", action="store_true",
                   help="the traces asked, and this node's files of each")
    add_format(p)
    p.set_defaults(func=trace)
