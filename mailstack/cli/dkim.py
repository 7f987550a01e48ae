"""``mailstack dkim keygen|list|rotate``: a domain's DKIM keys and their schedule.

Thin over ``dkim/rotation.py`` (one transaction per command) and ``store/dkim_keys.py``.
``--at`` plays the command at another moment, as ``policy show`` does: the keys' dates
are the injected clock's.  Nothing here prints a private key: ``list`` shows selectors,
algorithms, dates, the public key's fingerprint and, with ``--dns``, the TXT records.
"""

from __future__ import annotations

from datetime import timedelta

from mailstack import addresses
from mailstack.cli.common import CommandError, EXIT_USAGE, add_format, emit, open_context, run
from mailstack.cli.policy import _moment
from mailstack.dkim import keys, rotation, schedule
from mailstack.policy import sender_records
from mailstack.store import directory, dkim_keys


def keygen(args) -> None:
    ctx = open_context(args)
    domain = _signing_domain(ctx, args.domain)
    at = _moment(args.at) if args.at else ctx.now()
    algorithms = keys.ALGORITHMS if args.algorithm == "both" else (args.algorithm,)
    pairs = rotation.make_pairs(algorithms)
    plan = _planned(ctx, rotation.keygen, domain, at, pairs, args.selector)
    _report(ctx, domain, plan, "signing now")


def rotate(args) -> None:
    ctx = open_context(args)
    domain = _signing_domain(ctx, args.domain)
    at = _moment(args.at) if args.at else ctx.now()
    seconds = ctx.config.dkim.rotation_delay if args.delay is None else args.delay
    if seconds < 0:
        raise CommandError("--delay must not be negative", EXIT_USAGE)
    pairs = rotation.make_pairs()
    plan = _planned(ctx, rotation.rotate, domain, at, timedelta(seconds=seconds), pairs,
                    args.selector)
    _report(ctx, domain, plan, f"signing from {plan.signs_from.isoformat(timespec='seconds')}; "
            "the keys signing now retire then")


def listing(args) -> None:
    ctx = open_context(args)
    domain = _domain(args.domain) if args.domain else None
    at = _moment(args.at) if args.at else ctx.now()
    keep = timedelta(seconds=ctx.config.dkim.keep_retired)
    found = run(ctx, dkim_keys.listing, domain)
    if args.dns:
        for d in dict.fromkeys(k.domain for k in found):
            for line in sender_records.dkim_records(ctx.config, d, found, at):
                print(line)
        return
    rows = [{"domain": k.domain, "selector": k.selector, "algorithm": k.algorithm,
             "state": schedule.state(k, at, keep), "published": _when(k.published_at),
             "signs_from": _when(k.signs_from), "retires": _when(k.retires_at),
             "fingerprint": keys.fingerprint(k.public_key)} for k in found]
    if not rows and args.format == "table":
        print("no DKIM keys" + (f" for {domain}" if domain else ""))
        return
    emit(args, rows, ["domain", "selector", "algorithm", "state", "published", "signs_from",
                      "retires", "fingerprint"])


def _planned(ctx, step, *args):
    try:
        return run(ctx, step, *args)
    except schedule.ScheduleError as e:
        raise CommandError(str(e)) from None


def _report(ctx, domain: str, plan, when: str) -> None:
    for algorithm, selector in plan.selectors.items():
        print(f"{domain}: {algorithm} key {selector} made, {when}")
    print(f"publish its records: `mailstack dkim list {domain} --dns` "
          f"(or `mailstack dns records {domain}`)")


def _domain(text: str) -> str:
    try:
        return addresses.parse_domain(text)
    except addresses.AddressError:
        raise CommandError(f"{text!r} is not a domain name") from None


def _signing_domain(ctx, text: str) -> str:
    """A hosted domain, or our own host name (the ``From:`` of our bounces)."""
    domain = _domain(text)
    if domain == ctx.config.server.hostname.lower() or domain in ctx.config.domains.hosted:
        return domain
    if not run(ctx, directory.is_hosted, domain):
        raise CommandError(f"{domain} is not hosted here (nor our host name "
                           f"{ctx.config.server.hostname})")
    return domain


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "-"


def register(groups) -> None:
    group = groups.add_parser("dkim", help="DKIM signing keys: make, list, rotate").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("keygen", help="make DOMAIN's first keys (Ed25519 and RSA-2048), "
                                        "signing at once")
    p.add_argument("domain")
    p.add_argument("--selector", help="selector stem instead of the date (YYYYMMDD); the "
                                      "letters e/r are added unless one --algorithm is named")
    p.add_argument("--algorithm", choices=["both", *keys.ALGORITHMS], default="both")
    p.add_argument("--at", help="the moment of the command (default: now)")
    p.set_defaults(func=keygen)
    p = group.add_parser("list", help="keys with their state and dates (never the private key)")
    p.add_argument("domain", nargs="?")
    p.add_argument("--at", help="the states at this moment (default: now)")
    p.add_argument("--dns", action="store_true", help="the TXT records to publish instead")
    add_format(p)
    p.set_defaults(func=listing)
    p = group.add_parser("rotate", help="new keys published now, signing after [dkim] "
                                        "rotation_delay, when the current ones retire")
    p.add_argument("domain")
    p.add_argument("--selector", help="selector stem instead of the date")
    p.add_argument("--delay", type=int, help="seconds until the new keys sign "
                                             "(default: [dkim] rotation_delay)")
    p.add_argument("--at", help="the moment of the command (default: now)")
    p.set_defaults(func=rotate)
