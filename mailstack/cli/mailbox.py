"""``mailstack mailbox list|status|fetch|search|expunge``: an account's folders, as doveadm
reads them.

Why: a support desk needs to see what a customer's client sees ("is the message there?")
and to remove what should not be (a mail storm, a message sent to everyone by mistake)
without the customer's password.  The query is IMAP SEARCH syntax read by IMAP's own
grammar (``protocols/imap_search_grammar.py``, the "imap grammar" part of the layering
table) and run by the store's SEARCH, so ``FROM bob SINCE 1-Dec-2026 UNSEEN`` finds here
exactly what it finds in a client.  An expunge goes through the store as IMAP EXPUNGE
does, so sessions of the account hear of it.

Standards: RFC 3501 §6.4.4 (SEARCH keys), §6.3.10 (STATUS items).
"""

from __future__ import annotations

import json
import sys
from email.header import decode_header, make_header

from mailstack.cli.common import CommandError, EXIT_USAGE, add_format, emit, open_context, run
from mailstack.cli.directory import address_arg
from mailstack.protocols.imap_search_grammar import parse_search, resolve_recent
from mailstack.protocols.imap_tokens import ParseError, Reader
from mailstack.store import mailbox_admin

FIELDS = ("uid", "flags", "date", "received", "size", "from", "to", "subject", "message_id")
DEFAULT_FIELDS = "uid,from,subject,date,size"


def parse_query(words) -> object:
    """The query words, joined by spaces, read as IMAP SEARCH keys; a function of the
    folder's \\Recent UIDs that returns the criteria tree.

    IMAP quotes strings; a shell has already split the words, so a word that can only be
    a string is quoted here: among several words, one with a space; a word without a space
    that is not ASCII; never one with a quote, parenthesis or backslash (IMAP syntax).  So
    ``SUBJECT 'two words'`` and ``SUBJECT café`` work, and a single argument with spaces
    is the whole query as written (``'SUBJECT "two words" UNSEEN'``)."""
    text = " ".join(_quoted_if_string(w, several=len(words) > 1) for w in words) or "ALL"
    try:
        _charset, tree = parse_search(Reader(text.encode("utf-8")))
    except ParseError as e:
        raise CommandError(f"bad search query {text!r}: {e.text} (IMAP SEARCH syntax, "
                           "e.g. FROM bob SINCE 1-Dec-2026 UNSEEN)") from None
    return lambda recent: resolve_recent(tree, recent)


def _quoted_if_string(word: str, several: bool) -> str:
    if any(c in word for c in '"()\\') or not word:
        return word
    string = several if " " in word else not word.isascii()
    return f'"{word}"' if string else word


def _target(args) -> tuple:
    """(address, folder, criteria) of a search-like command."""
    return address_arg(args.address), args.folder, parse_query(args.query)


def _decoded(value: str) -> str:
    """RFC 2047 encoded words made readable; text that does not decode is shown as written."""
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


def _row(summary: mailbox_admin.Summary) -> dict:
    return {"uid": summary.uid, "flags": " ".join(summary.flags),
            "date": _decoded(summary.date),
            "received": summary.internal_date.isoformat(timespec="seconds"),
            "size": summary.size, "from": _decoded(summary.from_), "to": _decoded(summary.to),
            "subject": _decoded(summary.subject), "message_id": summary.message_id}


def mailbox_list(args):
    ctx = open_context(args)
    found = run(ctx, mailbox_admin.folders_with_counts, address_arg(args.address))
    rows = [{"folder": name, "messages": counts["MESSAGES"], "unseen": counts["UNSEEN"],
             "size": counts["SIZE"], "uidnext": counts["UIDNEXT"]} for name, counts in found]
    emit(args, rows, ["folder", "messages", "unseen", "size", "uidnext"])


def mailbox_status(args):
    ctx = open_context(args)
    counts = run(ctx, mailbox_admin.status, address_arg(args.address), args.folder)
    row = {key.lower(): value for key, value in counts.items()}
    if args.format == "json":
        print(json.dumps(row, indent=2))
        return
    for key, value in row.items():
        print(f"{key + ':':<13} {value}")


def mailbox_search(args):
    ctx = open_context(args)
    uids = run(ctx, mailbox_admin.search, *_target(args))
    if args.format == "json":
        print(json.dumps(uids))
    elif uids:
        print("\n".join(map(str, uids)))


def mailbox_fetch(args):
    fields = [f.strip() for f in args.field.split(",") if f.strip()]
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        raise CommandError(f"unknown field {', '.join(unknown) or '(none)'}: choose from "
                           f"{', '.join(FIELDS)}", EXIT_USAGE)
    if args.body and args.format == "json":
        raise CommandError("--body writes the messages as stored; it does not combine with "
                           "--format json", EXIT_USAGE)
    ctx = open_context(args)
    found = run(ctx, mailbox_admin.fetch, *_target(args))
    if args.body:
        _write_bodies(ctx, found)
        return
    emit(args, [{f: _row(s)[f] for f in fields} for s in found], fields)


def _write_bodies(ctx, found) -> None:
    """Each message exactly as stored, one read at a time; a form feed line between
    messages, as doveadm's pager output has."""
    out = sys.stdout.buffer
    for number, summary in enumerate(found):
        raw = run(ctx, mailbox_admin.body, summary.id)
        if raw is None:                 # expunged since the search
            continue
        if number:
            out.write(b"\x0c\n")
        out.write(raw)
    out.flush()


def mailbox_expunge(args):
    if not args.yes:
        raise CommandError("expunge deletes the matching messages for good: repeat with --yes")
    ctx = open_context(args)
    removed = run(ctx, mailbox_admin.expunge, *_target(args))
    print(f"{removed} message(s) expunged from {args.folder} of {args.address}")


def _where(p, query: bool = True, required: bool = False) -> None:
    p.add_argument("address")
    p.add_argument("folder", nargs=None if required else "?", default="INBOX",
                   help="folder name (default INBOX; name it when a query follows)")
    if query:
        p.add_argument("query", nargs="+" if required else "*",
                       help="IMAP SEARCH keys, e.g. FROM bob SINCE 1-Dec-2026 UNSEEN "
                            "(default ALL)")


def register(groups) -> None:
    group = groups.add_parser("mailbox", help="an account's folders and messages (doveadm)"
                              ).add_subparsers(dest="verb", required=True, metavar="VERB")
    p = group.add_parser("list", help="the account's folders with their message counts")
    p.add_argument("address")
    add_format(p)
    p.set_defaults(func=mailbox_list)
    p = group.add_parser("status", help="a folder's counts as IMAP STATUS gives them")
    _where(p, query=False)
    add_format(p)
    p.set_defaults(func=mailbox_status)
    p = group.add_parser("search", help="the UIDs of the messages a query matches")
    _where(p)
    add_format(p)
    p.set_defaults(func=mailbox_search)
    p = group.add_parser("fetch", help="header fields (or the whole stored message) of the "
                                       "messages a query matches")
    _where(p)
    p.add_argument("--field", default=DEFAULT_FIELDS,
                   help=f"comma-separated, from {','.join(FIELDS)} (default {DEFAULT_FIELDS})")
    p.add_argument("--body", action="store_true",
                   help="write each message as stored instead (a form feed line between)")
    add_format(p)
    p.set_defaults(func=mailbox_fetch)
    p = group.add_parser("expunge", help="delete the messages a query matches (IMAP sessions "
                                         "see them expunged)")
    _where(p, required=True)
    p.add_argument("--yes", action="store_true", help="confirm")
    p.set_defaults(func=mailbox_expunge)
