"""``mailstack explain FILE|-``: why was this mail bounced, from the bounce itself.

Why: the customer forwards the bounce; the desk should not have to read it by eye and type
its facts into ``mailstack rejections``.  This reads the bounce (``desk/bounce_parse.py``),
matches it against our records (``desk/explainer.py``) and prints the verdict, the evidence,
whether it is still in force, and advice in words that can be sent to the customer.  "Now"
is the wall clock, or ``--at`` (what was in force then).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mailstack import clock as clocks
from mailstack.cli import antispam, common
from mailstack.cli.common import CommandError, add_format, open_context, printable, run
from mailstack.cli.support import parse_when
from mailstack.desk import bounce_parse
from mailstack.desk.explainer import Explainer


def _read(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read(bounce_parse.MAX_INPUT + 1)
    try:
        with Path(source).open("rb") as f:
            return f.read(bounce_parse.MAX_INPUT + 1)
    except OSError as e:
        raise CommandError(f"{source}: cannot read it ({e.strerror})", common.EXIT_USAGE) from None


def explain(args):
    data = _read(args.bounce)
    ctx = open_context(args)
    now = parse_when(args.at) if args.at else ctx.now()
    ip = antispam._ip(args.ip) if args.ip else None
    facts = bounce_parse.read(data)
    hostnames = [ctx.config.server.hostname]
    explainer = Explainer(lambda fn, *a, **kw: run(ctx, fn, *a, **kw), hostnames)
    found = explainer.explain(facts, now, client_ip=ip)
    report = found.as_dict()
    report["at"] = clocks.to_datetime(clocks.to_seconds(now)).isoformat(timespec="seconds")
    if args.format == "json":
        print(json.dumps(report, indent=2, default=str))
        return
    print(printable(_text(report)))


def _text(report: dict) -> str:
    lines = [f"verdict: {report['title']}", "", report["why"], ""]
    lines.append("still in force: " + _in_force(report))
    lines += ["", "what the sender should do:", f"  {report['advice']['sender']}",
              "what our customer can do:", f"  {report['advice']['customer']}", ""]
    lines += ["evidence:"] + [f"  - {e}" for e in report["evidence"] or ["no record of ours"]]
    if report["for_desk"]:
        lines += ["for the desk only (do not send on):"] + [f"  - {s}" for s in report["for_desk"]]
    lines += ["found in the bounce:"] + [f"  {k}: {v}" for k, v in report["found"].items()]
    if report["truncated"]:
        lines.append(f"only the first {bounce_parse.MAX_INPUT // 1024} KiB of the bounce were read")
    if report["missing"]:
        lines.append("missing from the bounce: " + "; ".join(report["missing"]))
    return "\n".join(lines)


def _in_force(report: dict) -> str:
    state, until = report["in_force"], report["until"]
    if state == "yes":
        return f"yes, until {until} UTC"
    if state == "no" and until:
        return f"no, it ended at {until} UTC"
    return state


def register(groups) -> None:
    p = groups.add_parser("explain", help="why was this mail bounced: read the bounce a "
                          "customer forwards and match it against our records")
    p.add_argument("bounce", help="the bounce: a file (a whole message, or pasted text) or - "
                   "for standard input")
    p.add_argument("--at", help="judge 'still in force' at this time (UTC unless an offset "
                   "is given) instead of now")
    p.add_argument("--ip", help="the sending server's IP, when the bounce does not name it")
    add_format(p)
    p.set_defaults(func=explain)
