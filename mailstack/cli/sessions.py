"""``mailstack who`` and ``mailstack kick``: who is logged in now, and ending their sessions.

Dovecot's ``doveadm who``/``kick`` for every node sharing the database: each node records
its logged-in connections and closes the ones a kick flags within a few seconds
(``protocols/live_sessions.py``).  A kicked POP3 session ends without QUIT, so nothing it
marked is deleted (RFC 1939 §6).
"""

from __future__ import annotations

from mailstack import addresses
from mailstack.cli.common import CommandError, add_format, emit, open_context, run
from mailstack.store import live_sessions


def who(args) -> None:
    ctx = open_context(args)
    user = _address(args.address) if args.address else None
    rows = [{"user": s.username, "protocol": s.protocol, "ip": s.client_ip,
             "since": s.started_at.isoformat(timespec="seconds"), "node": s.node}
            for s in run(ctx, live_sessions.listing, user)]
    if not rows and args.format == "table":
        print("nobody is logged in" + (f" as {user}" if user else ""))
        return
    emit(args, rows, ["user", "protocol", "ip", "since", "node"])


def kick(args) -> None:
    ctx = open_context(args)
    user = _address(args.address)
    count = run(ctx, live_sessions.request_kick, user)
    if not count:
        raise CommandError(f"{user} has no session open")
    print(f"{count} session(s) of {user} will be closed within seconds by the node that "
          "holds each")


def _address(text: str) -> str:
    try:
        return addresses.normalise(text)
    except addresses.AddressError as e:
        raise CommandError(f"{text!r} is not a valid address: {e}") from None


def register(groups) -> None:
    p = groups.add_parser("who", help="who is logged in now, on every node (doveadm who)")
    p.add_argument("address", nargs="?", help="only this account")
    add_format(p)
    p.set_defaults(func=who)
    p = groups.add_parser("kick", help="close every session of an account, on every node")
    p.add_argument("address")
    p.set_defaults(func=kick)
