"""``mailstack block|whitelist|complaint|dnsbl|firewall …``: the abuse desk's controls.

Changes go straight to the database, which the running servers read on every
connection: no restart, no reload.
"""

from __future__ import annotations

import ipaddress
from datetime import timedelta

from mailstack import dns
from mailstack.cli import common, whitehole
from mailstack.cli.common import CommandError, add_format, emit, open_context, operator, run
from mailstack.policy import blocklist, complaints as complaint_rules, dnsbl as dnsbl_check
from mailstack.store import blocks, complaints, whitelist


def _ip(text: str) -> str:
    try:
        return ipaddress.ip_address(text.strip()).compressed
    except ValueError:
        raise CommandError(f"{text!r} is not an IP address") from None


def _network(text: str) -> str:
    try:
        return blocks.network_of(text)
    except ValueError:
        raise CommandError(f"{text!r} is not an IP address or network") from None


def block_add(args):
    ctx = open_context(args)
    network = _network(args.network)
    blocker = blocklist.Blocker(ctx.config.antispam)
    duration = timedelta(hours=args.hours) if args.hours else None
    block = run(ctx, blocker.add, network, action="firewall" if args.firewall else "reject",
                source="manual", reason=args.reason, evidence=args.evidence or "",
                added_by=args.by or operator(), at=ctx.now(), duration=duration)
    print(f"{block.network} blocked ({block.action}) until {block.expires_at.isoformat()}")


def _block_row(b) -> dict:
    return {"network": b.network, "action": b.action, "source": b.source, "reason": b.reason,
            "evidence": b.evidence, "added_by": b.added_by, "since": b.created_at.isoformat(),
            "expires": b.expires_at.isoformat()}


def block_list(args):
    ctx = open_context(args)
    rows = [_block_row(b) for b in run(ctx, blocks.list_active, ctx.now())]
    emit(args, rows, ["network", "action", "source", "reason", "expires"])


def block_remove(args):
    ctx = open_context(args)
    network = _network(args.network)
    run(ctx, blocks.remove, network, ctx.now())
    print(f"block on {network} removed")


def whitelist_add(args):
    ctx = open_context(args)
    try:
        entry = run(ctx, whitelist.add, args.entry, args.reason, args.by or operator(), ctx.now())
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"{entry.entry} whitelisted ({entry.kind}): {entry.reason}")


def whitelist_list(args):
    ctx = open_context(args)
    rows = [{"entry": e.entry, "kind": e.kind, "reason": e.reason, "added_by": e.added_by,
             "since": e.created_at.isoformat(), "origin": e.origin,
             "review": e.review_at.date().isoformat() if e.review_at else ""}
            for e in run(ctx, whitelist.all_entries)]
    emit(args, rows, ["entry", "kind", "origin", "reason", "added_by", "since", "review"])


def whitelist_remove(args):
    ctx = open_context(args)
    try:
        run(ctx, whitelist.remove, args.entry)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"{args.entry} removed from the whitelist")


def complaint_add(args):
    ctx = open_context(args)
    ip = _ip(args.ip)
    complaint = complaints.Complaint(ip, ctx.now(), "cli", args.reason, args.evidence or "")
    count, block = run(ctx, complaint_rules.register, complaint, ctx.config.antispam,
                       blocklist.Blocker(ctx.config.antispam))
    print(f"complaint against {ip} recorded ({count} in the window)")
    if block is not None:
        print(f"{ip} blocked until {block.expires_at.isoformat()}: {block.reason}")


def dnsbl_lookup(config, ip: str, reactor):
    """Deferred [(DNSBL, Outcome)] for every configured list, asked now."""
    resolver = dns.Resolver(config.dns.nameservers, timeout=config.dns.timeout, reactor=reactor)
    listed = dnsbl_check.Listed(resolver, config.antispam.dnsbl, reactor)
    return listed.query(ip).addCallback(lambda results: (listed.lists, dict(
        (l.zone, o) for l, o in results)))


def describe(dnsbl, outcome, ip) -> str:
    if dnsbl.broken:
        return "switched off: the list answers 'listed' for 127.0.0.1"
    if isinstance(outcome, dns.Found):
        codes, txt = outcome.value
        if any(dnsbl.counts(c) for c in codes):
            return f"LISTED ({', '.join(codes)}): {dnsbl.reason(ip, txt)}"
        return f"not listed (answer {', '.join(codes)} is not a listing code)"
    if isinstance(outcome, dns.TempFail):
        return f"lookup failed ({outcome.reason})"
    return "not listed"


def dnsbl_test(args):
    ctx = open_context(args, check_schema=False)
    ip = _ip(args.ip)
    if not ctx.config.antispam.dnsbl:
        raise CommandError("no DNSBLs are configured ([[antispam.dnsbl]])")
    lists, outcomes = common.with_reactor(lambda reactor: dnsbl_lookup(ctx.config, ip, reactor))
    rows = [{"zone": l.zone, "answer": describe(l, outcomes.get(l.zone), ip),
             "lookup": l.lookup_url(ip)} for l in lists]
    emit(args, rows, ["zone", "answer", "lookup"])


def firewall_export(args):
    ctx = open_context(args)
    firewalled = run(ctx, blocks.list_active, ctx.now(), "firewall")
    v4 = sorted({b.network for b in firewalled if ":" not in b.network})
    v6 = sorted({b.network for b in firewalled if ":" in b.network})
    if args.format == "plain":
        print("\n".join(v4 + v6))
        return
    print("# mailstack firewalled senders; load with: nft -f FILE")
    for family, name, items in (("ipv4_addr", "mailstack_firewall_v4", v4),
                                ("ipv6_addr", "mailstack_firewall_v6", v6)):
        elements = f" elements = {{ {', '.join(items)} }}" if items else ""
        print(f"add set inet filter {name} {{ type {family}; flags interval;{elements} }}")


def register(groups) -> None:
    block = groups.add_parser("block", help="the local block list").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = block.add_parser("add", help="refuse mail from an IP or network (expires)")
    p.add_argument("network")
    p.add_argument("--reason", required=True)
    p.add_argument("--evidence")
    p.add_argument("--hours", type=float, help="default: [antispam] block_duration, longer for "
                                               "repeat offenders")
    p.add_argument("--firewall", action="store_true", help="drop connections before the banner")
    p.add_argument("--by", help="who adds it (default: your user name)")
    p.set_defaults(func=block_add)
    p = block.add_parser("list", help="active blocks")
    add_format(p)
    p.set_defaults(func=block_list)
    p = block.add_parser("remove", help="lift the active block on an IP or network")
    p.add_argument("network")
    p.set_defaults(func=block_remove)

    wl = groups.add_parser("whitelist", help="clients that skip the anti-spam checks").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = wl.add_parser("add", help="an IP, a network, or a hostname suffix like .partner.example "
                                  "(matched only when the PTR is forward-confirmed)")
    p.add_argument("entry")
    p.add_argument("--reason", required=True)
    p.add_argument("--by")
    p.set_defaults(func=whitelist_add)
    p = wl.add_parser("list", help="every whitelist entry, with its origin (manual or the "
                                   "whitehole request it was approved from) and reason")
    add_format(p)
    p.set_defaults(func=whitelist_list)
    p = wl.add_parser("remove", help="take an entry off the whitelist")
    p.add_argument("entry")
    p.set_defaults(func=whitelist_remove)
    whitehole.register(wl)

    complaint = groups.add_parser("complaint", help="complaints against sending IPs").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = complaint.add_parser("add", help="record a complaint; enough of them block the IP")
    p.add_argument("ip")
    p.add_argument("--reason", required=True)
    p.add_argument("--evidence")
    p.set_defaults(func=complaint_add)

    dnsbl = groups.add_parser("dnsbl", help="DNS block lists").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = dnsbl.add_parser("test", help="ask every configured list about IP now")
    p.add_argument("ip")
    add_format(p)
    p.set_defaults(func=dnsbl_test)

    fw = groups.add_parser("firewall", help="the directory-harvest firewall").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = fw.add_parser("export", help="firewalled addresses for the edge router")
    p.add_argument("--format", choices=["nft", "plain"], default="nft")
    p.set_defaults(func=firewall_export)

