"""``mailstack rejections`` and ``mailstack why``: the support desk's two questions.

"Why was my mail rejected?" is answered from what a customer can tell: From, To, roughly
when, the error text (or the ref in it) and perhaps the client IP.  "What is wrong with
this address?" is answered from everything we know about it now, with the next step.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from twisted.internet import defer

from mailstack import addresses, dns
from mailstack.cli import antispam, common
from mailstack.cli.common import CommandError, add_format, emit, open_context, printable, run
from mailstack.store import blocks, complaints, rejections, whitelist

REF = re.compile(r"\bref:? ?([A-HJ-NP-Z2-9]{8})\b", re.IGNORECASE)


def parse_when(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise CommandError(f"--at: {text!r} is not a date-time like 2026-11-25T10:14") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _rows(found) -> list[dict]:
    return [{"at": r.at.isoformat(timespec="seconds"), "ref": r.ref, "client_ip": r.client_ip,
             "ptr": r.ptr or "", "helo": r.helo or "", "from": r.mail_from or "",
             "to": r.rcpt_to or "", "check": r.check_name, "port": r.port, "reply": r.reply,
             "detail": r.detail}
            for r in found]


def rejections_search(args):
    ctx = open_context(args)
    facts = {}
    if args.sender:
        facts["sender"] = _normal(args.sender)
    if args.recipient:
        facts["recipient"] = _normal(args.recipient)
    if args.at:
        facts["at"] = parse_when(args.at)
        facts["tolerance"] = timedelta(minutes=args.tolerance)
    if args.ip:
        facts["client_ip"] = antispam._ip(args.ip)
    if args.message:
        ref = REF.search(args.message)
        facts["text"] = ref.group(1).upper() if ref else _core(args.message)
    if not facts:
        raise CommandError("give at least one fact: --from, --to, --at, --message or --ip",
                           common.EXIT_USAGE)
    found = run(ctx, rejections.search, **facts, limit=args.limit)
    if not found and args.format == "table":
        raise CommandError("no matching rejection: check the facts (the time is UTC unless an "
                           "offset is given), or widen --tolerance")
    emit(args, _rows(found), ["at", "ref", "client_ip", "from", "to", "check", "reply",
                              "detail"])


def _normal(address: str) -> str:
    try:
        return addresses.normalise(address.strip().strip("<>"))
    except addresses.AddressError:
        return address.strip().strip("<>").lower()


def _core(message: str) -> str:
    """What a bounce quotes of our reply: drop quoting around it and our code prefix."""
    text = message.strip().strip("'\"")
    return re.sub(r"^.*?\b[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3} ", "", text)


def why(args):
    ctx = open_context(args)
    ip = antispam._ip(args.ip)
    now = ctx.now()
    settings = ctx.config.antispam
    report = {"ip": ip, "at": now.isoformat(timespec="seconds")}

    @defer.inlineCallbacks
    def ask_dns(reactor):
        resolver = dns.Resolver(ctx.config.dns.nameservers, timeout=ctx.config.dns.timeout,
                                reactor=reactor)
        ptr = yield resolver.ptr(ip)
        confirmed = yield resolver.forward_confirmed_ptr(ip)
        lists, outcomes = ({}, {})
        if settings.dnsbl:
            lists, outcomes = yield antispam.dnsbl_lookup(ctx.config, ip, reactor)
        return ptr, confirmed, lists, outcomes

    ptr, confirmed, lists, outcomes = common.with_reactor(ask_dns)
    verified = confirmed.value if isinstance(confirmed, dns.Found) else None
    report["ptr"] = _outcome(ptr)
    report["forward_confirmed"] = verified or "no"
    report["whitelist"] = [f"{e.entry}: {e.reason} (by {e.added_by}, {e.origin})"
                           for e in run(ctx, whitelist.all_entries) if e.matches(ip, verified)]
    active = run(ctx, blocks.active_for, ip, now)
    report["blocks"] = [f"{b.action} since {b.created_at.isoformat(timespec='seconds')} until "
                        f"{b.expires_at.isoformat(timespec='seconds')} ({b.source}): {b.reason}; "
                        f"evidence: {b.evidence}" for b in active]
    report["earlier_blocks"] = len(run(ctx, blocks.history, ip)) - len(active)
    window = now - timedelta(seconds=settings.complaint_window)
    report["complaints"] = (f"{run(ctx, complaints.count_since, ip, window)} in the window "
                            f"(block at {settings.complaint_threshold})")
    report["dnsbl"] = [f"{l.zone}: {antispam.describe(l, outcomes.get(l.zone), ip)} — {l.lookup_url(ip)}"
                       for l in lists]
    recent = run(ctx, rejections.search, client_ip=ip, limit=10)
    report["recent_rejections"] = [f"{r.at.isoformat(timespec='seconds')} ref {r.ref} "
                                   f"{r.mail_from or '-'} -> {r.rcpt_to or '-'}: {r.reply}"
                                   for r in recent]
    report["next_steps"] = _advice(ip, report, lists, outcomes, ptr)
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        label = key.replace("_", " ")
        if isinstance(value, list):
            print(f"{label}:" + ("" if value else " none"))
            for item in value:
                print(f"  - {printable(item)}")
        else:
            print(f"{label}: {printable(value)}")


def _outcome(outcome) -> str:
    if isinstance(outcome, dns.Found):
        return ", ".join(outcome.value)
    if isinstance(outcome, dns.TempFail):
        return f"lookup failed ({outcome.reason}): such clients get 450 4.7.25"
    return "none: such clients get 550 5.7.25"


def _advice(ip, report, lists, outcomes, ptr) -> list[str]:
    steps = []
    if report["whitelist"]:
        steps.append("whitelisted: the anti-spam checks do not apply to this address")
    for l in lists:
        outcome = outcomes.get(l.zone)
        if isinstance(outcome, dns.Found) and any(l.counts(c) for c in outcome.value[0]):
            steps.append(f"listed by {l.zone}: the sender should ask for delisting at "
                         f"{l.lookup_url(ip)}")
    if report["blocks"]:
        steps.append(f"locally blocked: lift it with `mailstack block remove {ip}` if the "
                     "evidence is wrong (it expires by itself otherwise)")
    if not isinstance(ptr, dns.Found):
        steps.append("no reverse DNS: the sender's provider must publish a PTR record")
    if steps and not report["whitelist"]:
        steps.append(f"to accept its mail anyway: `mailstack whitelist add {ip} --reason "
                     "'TICKET: why'`")
    return steps or ["nothing blocks this address now"]


def register(groups) -> None:
    p = groups.add_parser("rejections", help="find refusals from what a customer tells you")
    p.add_argument("--from", dest="sender", help="the sender address")
    p.add_argument("--to", dest="recipient", help="the recipient address")
    p.add_argument("--at", help="when (UTC unless an offset is given), e.g. 2026-11-25T10:14")
    p.add_argument("--tolerance", type=float, default=60, help="minutes around --at (60)")
    p.add_argument("--message", help="the error text the customer got, or its ref")
    p.add_argument("--ip", help="the sending server's IP")
    p.add_argument("--limit", type=int, default=50)
    add_format(p)
    p.set_defaults(func=rejections_search)
    p = groups.add_parser("why", help="everything we know about an IP now, and what to do")
    p.add_argument("ip")
    add_format(p)
    p.set_defaults(func=why)
