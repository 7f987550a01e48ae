"""``mailstack whitelist requests list|show|approve|deny``: the desk's side of the whitehole
requests senders file on the HTTPS page (issue 21, item 3; ``protocols/whitehole_page.py``).

Why a thin command: the page already explained the bounce and looked the IP up when the
request was filed; ``show`` prints those findings, and ``approve`` creates the whitelist
entry naming the request, with a review date (``[whitehole] review_days`` or
``--review-days``), in one transaction (``store/whitehole_requests.py``).

Security: what the sender typed (the bounce, contact, reason) reaches the desk's terminal
with its control characters shown as ``\\xNN`` (``printable``): an escape sequence in a
pasted bounce must not drive the terminal.  ``--format json`` escapes them itself.
"""

from __future__ import annotations

import json

from mailstack.cli.common import (
    CommandError, add_format, emit, open_context, operator, printable, run,
)
from mailstack.store import whitehole_requests as requests

def requests_list(args):
    ctx = open_context(args)
    state = None if args.all else args.state
    rows = [r.summary() for r in run(ctx, requests.listing, state, args.limit)]
    emit(args, rows, ["ref", "filed", "ip", "contact", "verdict", "outcome", "state"])


def requests_show(args):
    ctx = open_context(args)
    request = run(ctx, requests.get, args.ref)
    report = {**request.summary(), "client_ip": request.client_ip, "reason": request.reason,
              "decided": request.decided_at.isoformat(timespec="seconds")
              if request.decided_at else None,
              "decided_by": request.decided_by, "note": request.note,
              "findings": json.loads(request.findings), "bounce": request.bounce}
    if args.format == "json":
        print(json.dumps(report, indent=2))
        return
    print(printable(_text(report)))


def _text(report: dict) -> str:
    findings = report.pop("findings")
    bounce = report.pop("bounce")
    explanation = findings.get("explanation", {})
    lines = [f"{k.replace('_', ' ')}: {v}" for k, v in report.items() if v is not None]
    lines.append(f"the bounce says: {explanation.get('title', '?')}")
    lines += [f"  - {e}" for e in explanation.get("evidence", [])]
    lines += [f"  for the desk only: {s}" for s in explanation.get("for_desk", [])]
    lines.append("DNSBLs at filing:" + ("" if findings.get("dnsbl") else " none configured"))
    lines += [f"  - {d['zone']}: {d['state']} ({d['lookup_url']})" for d in findings.get("dnsbl", [])]
    lines.append("our refusals of the IP (30 days):" + ("" if findings.get("refusals") else " none"))
    lines += [f"  - {r['at']} ref {r['ref']}: {r['kind']} (check {r['check']})"
              for r in findings.get("refusals", [])]
    lines.append("active blocks:" + ("" if findings.get("blocks") else " none"))
    lines += [f"  - {b}" for b in findings.get("blocks", [])]
    lines += ["bounce as pasted:", *("  | " + line for line in bounce.splitlines())]
    return "\n".join(lines)


def requests_approve(args):
    ctx = open_context(args)
    days = args.review_days or ctx.config.whitehole.review_days
    if days <= 0:
        raise CommandError("--review-days must be positive")
    try:
        request, entry = run(ctx, requests.approve, args.ref, by=args.by or operator(),
                             at=ctx.now(), review_days=days, note=args.note or "",
                             force=args.force)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"{request.ref} approved: {entry.entry} whitelisted, review on "
          f"{entry.review_at.date().isoformat()}; tell {printable(request.contact)}")


def requests_deny(args):
    ctx = open_context(args)
    request = run(ctx, requests.deny, args.ref, by=args.by or operator(), at=ctx.now(),
                  note=args.note or "")
    print(f"{request.ref} denied; tell {printable(request.contact)}")


def register(whitelist_verbs) -> None:
    """``requests`` under ``mailstack whitelist``."""
    verbs = whitelist_verbs.add_parser(
        "requests", help="whitehole requests filed by senders on the HTTPS page").add_subparsers(
        dest="request_verb", required=True, metavar="VERB")
    p = verbs.add_parser("list", help="requests waiting for the desk (--all: every one)")
    p.add_argument("--state", default="open", choices=requests.STATES)
    p.add_argument("--all", action="store_true", help="every state")
    p.add_argument("--limit", type=int, default=100)
    add_format(p)
    p.set_defaults(func=requests_list)
    p = verbs.add_parser("show", help="a request with its findings and the bounce")
    p.add_argument("ref", help="the request's reference, e.g. WH-7KQ2M4PX")
    add_format(p)
    p.set_defaults(func=requests_show)
    p = verbs.add_parser("approve", help="whitelist the request's IP, with a review date")
    p.add_argument("ref")
    p.add_argument("--note", help="the desk's note (ticket, what was checked)")
    p.add_argument("--review-days", type=int, help="days until review (default: [whitehole] "
                                                   "review_days)")
    p.add_argument("--force", action="store_true",
                   help="approve a request the page answered as one that cannot succeed")
    p.add_argument("--by", help="who decides (default: your user name)")
    p.set_defaults(func=requests_approve)
    p = verbs.add_parser("deny", help="close the request without a whitelist entry")
    p.add_argument("ref")
    p.add_argument("--note")
    p.add_argument("--by")
    p.set_defaults(func=requests_deny)
