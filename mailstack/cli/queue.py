"""``mailstack queue list|show|flush|delete``: the outbound queue, for operators."""

from __future__ import annotations

from mailstack.cli.common import CommandError, add_format, emit, open_context, run
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
    emit(args, rows, ["recipient", "status", "attempts", "queued_since", "next_attempt", "last_reply"])


def queue_flush(args):
    ctx = open_context(args)
    count = run(ctx, queue.flush, ctx.now())
    print(f"{count} recipient(s) due now; the running server delivers them at its next pass")


def queue_delete(args):
    ctx = open_context(args)
    run(ctx, queue.remove, args.queue_id)
    print(f"{args.queue_id} deleted from the queue (no bounce is sent)")


def register(groups) -> None:
    group = groups.add_parser("queue", help="the outbound queue").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("list", help="every queued recipient")
    add_format(p)
    p.set_defaults(func=queue_list)
    p = group.add_parser("show", help="one message's recipients and last replies")
    p.add_argument("queue_id")
    add_format(p)
    p.set_defaults(func=queue_show)
    p = group.add_parser("flush", help="make every queued recipient due now")
    p.set_defaults(func=queue_flush)
    p = group.add_parser("delete", help="drop a message from the queue")
    p.add_argument("queue_id")
    p.set_defaults(func=queue_delete)
