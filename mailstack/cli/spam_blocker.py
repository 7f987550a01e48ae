"""``mailstack account spam-blocker|spam-allow|spam-block …``: a customer's SPAM Blocker
(issue 18): the switch, the ``[SPAM]`` subject tag, and their own sender lists.  Thin:
the rules are ``store/spam_settings.py``'s."""

from __future__ import annotations

from mailstack import addresses
from mailstack.cli.common import CommandError, add_format, emit, open_context, run
from mailstack.store import directory, spam_settings


def _address(text: str) -> str:
    try:
        return addresses.normalise(text)
    except addresses.AddressError as e:
        raise CommandError(f"{text!r} is not a valid address: {e}") from None


def _on_account(ctx, address: str, fn, *args):
    """``fn(conn, account_id, *args)`` for the account at ``address``, one transaction."""
    def work(conn):
        return fn(conn, directory.require_account(conn, address).id, *args)
    try:
        return run(ctx, work)
    except ValueError as e:
        raise CommandError(str(e)) from None


def describe(settings) -> str:
    if not settings.blocker:
        return "off (probable spam is delivered to the INBOX, marked X-Spam-Status: Yes)"
    return "on (probable spam to Junk" + (", subject tagged [SPAM])" if settings.tag_subject
                                          else ")")


def spam_blocker(args):
    ctx = open_context(args)
    address = _address(args.address)
    settings = _on_account(ctx, address, spam_settings.set_blocker, args.state == "on",
                           args.tag_subject)
    print(f"SPAM Blocker of {address}: {describe(settings)}")


def sender_list(args):
    ctx = open_context(args)
    address, kind = _address(args.address), args.kind
    if args.action == "list":
        rows = [{"pattern": p} for p in _on_account(ctx, address, spam_settings.entries, kind)]
        emit(args, rows, ["pattern"])
        return
    if not args.pattern:
        raise CommandError(f"{args.action} needs a PATTERN (user@domain or domain)")
    change = spam_settings.add_entry if args.action == "add" else spam_settings.remove_entry
    pattern = _on_account(ctx, address, change, kind, args.pattern)
    done = "added to" if args.action == "add" else "removed from"
    print(f"{pattern} {done} the {kind} list of {address}")


def register(account_verbs) -> None:
    p = account_verbs.add_parser("spam-blocker", help="switch SPAM Blocker (probable spam "
                                                      "to the Junk folder) on or off")
    p.add_argument("address")
    p.add_argument("state", choices=["on", "off"])
    p.add_argument("--tag-subject", dest="tag_subject", action="store_true", default=None,
                   help='put "[SPAM] " in front of the Subject of what goes to Junk')
    p.add_argument("--no-tag-subject", dest="tag_subject", action="store_false",
                   help="leave the Subject as it is (the default)")
    p.set_defaults(func=spam_blocker)
    for kind, what in (("allow", "senders always delivered to the INBOX"),
                       ("block", "senders always filed in Junk")):
        p = account_verbs.add_parser(f"spam-{kind}", help=f"{what} (user@domain, or a domain "
                                                           "with its subdomains)")
        p.add_argument("address")
        p.add_argument("action", choices=["add", "remove", "list"])
        p.add_argument("pattern", nargs="?")
        add_format(p)
        p.set_defaults(func=sender_list, kind=kind)
