"""``mailstack queue list|show|flush|hold|release|requeue|delete``: the outbound queue, for
operators, with Postfix's ``postsuper`` controls.

Every control takes a queue id or ``--all``, narrowed with ``--to DOMAIN`` (the recipients
at one destination: "hold everything for the domain whose server is broken").  A held
recipient is never claimed by the running server until it is released (store/queue.py).
"""

from __future__ import annotations

from mailstack.cli.common import CommandError, add_format, emit, open_context, run
from mailstack.cli.directory import domain_arg
from mailstack.store import queue


def _rows(found):
    return [{"queue_id": r.queue_id, "sender": r.sender or "<>", "recipient": r.recipient,
             "status": r.status, "attempts": r.attempts,
             "next_attempt": r.next_attempt_at.isoformat(timespec="seconds"),
             "queued_since": r.created_at.isoformat(timespec="seconds"),
             "last_reply": r.last_reply} for r in found]


def queue_list(args):
    ctx = open_context(args)
    rows = _rows(run(ctx, queue.listing))
    if not rows and args.format == "table":
        print("the queue is empty")
        return
    emit(args, rows, ["queue_id", "sender", "recipient", "status", "attempts", "next_attempt"])


def queue_show(args):
    ctx = open_context(args)
    rows = _rows(run(ctx, queue.listing, args.queue_id))
    if not rows:
        raise CommandError(f"no queued message {args.queue_id}")
    emit(args, rows, ["recipient", "status", "attempts", "queued_since", "next_attempt",
                      "last_reply"])


def queue_flush(args):
    ctx = open_context(args)
    count = run(ctx, queue.flush, ctx.now())
    print(f"{count} recipient(s) due now; the running server delivers them at its next pass")


def _selection(args) -> tuple[str | None, str | None, str]:
    """(queue id or None for all, domain or None, the words that name it)."""
    if (args.queue_id is None) == (not args.all):
        raise CommandError("name a queue id or --all (not both)")
    domain = domain_arg(args.to) if args.to else None
    words = args.queue_id or "every message"
    return args.queue_id, domain, words + (f" to {domain}" if domain else "")


def _control(args, change, outcome: str, *, at_now: bool = True) -> None:
    """Apply ``change`` (a store function) to the selected recipients; say what it did."""
    ctx = open_context(args)
    queue_id, domain, what = _selection(args)
    count = run(ctx, change, *((ctx.now(),) if at_now else ()), queue_id, domain)
    print(f"{count} recipient(s) of {what} {outcome}")


def queue_hold(args):
    _control(args, queue.hold, "held: not delivered until `mailstack queue release`")


def queue_release(args):
    _control(args, queue.release, "released: delivered on their retry schedule "
                                  "(`mailstack queue requeue` for now)")


def queue_requeue(args):
    _control(args, queue.requeue, "due now (held ones stay held); the running server "
                                  "delivers them at its next pass")


def queue_delete(args):
    _control(args, queue.drop, "deleted from the queue (no bounce is sent)", at_now=False)


def _controlled(group, verb: str, func, helptext: str) -> None:
    p = group.add_parser(verb, help=helptext)
    p.add_argument("queue_id", nargs="?", help="the queue id (`queue list`)")
    p.add_argument("--all", action="store_true", help="every message in the queue")
    p.add_argument("--to", metavar="DOMAIN", help="only the recipients at DOMAIN")
    p.set_defaults(func=func)


def register(groups) -> None:
    group = groups.add_parser("queue", help="the outbound queue").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("list", help="every queued recipient, held ones included")
    add_format(p)
    p.set_defaults(func=queue_list)
    p = group.add_parser("show", help="one message's recipients and last replies")
    p.add_argument("queue_id")
    add_format(p)
    p.set_defaults(func=queue_show)
    p = group.add_parser("flush", help="make every waiting (not held) recipient due now")
    p.set_defaults(func=queue_flush)
    _controlled(group, "hold", queue_hold, "keep recipients from delivery until released")
    _controlled(group, "release", queue_release, "let held recipients go on their schedule")
    _controlled(group, "requeue", queue_requeue, "make waiting recipients due now, attempts "
                                                 "kept")
    _controlled(group, "delete", queue_delete, "drop recipients from the queue (no bounce)")
