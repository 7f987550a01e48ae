"""``mailstack legacy report``: who the sunset and the cutover would cut off, and the trend.

Why: an ISP retiring POP-before-SMTP and cleartext passwords must know beforehand whom the
change breaks, and watch that number fall week by week before the date.
"""

from __future__ import annotations

import csv
import json
import sys
from datetime import timedelta

from pathlib import Path
from types import SimpleNamespace

from mailstack.cli.common import CommandError, emit, open_context, run
from mailstack.cli.policy import _moment
from mailstack.policy import notices
from mailstack.store import legacy


def report(args):
    ctx = open_context(args)
    since = _moment(args.since) if args.since else ctx.now() - timedelta(days=30)
    window = run(ctx, legacy.window_relays, since)
    cleartext = run(ctx, legacy.cleartext_logins, since)
    hasher = ctx.hasher()
    old_hashes = {a: hasher.scheme_of(h) for a, h in run(ctx, legacy.account_hashes)
                  if hasher.is_legacy(h)}
    sent = run(ctx, legacy.notices_sent)
    ids = run(ctx, legacy.account_ids, sorted(set(window) | set(cleartext) | set(old_hashes)))
    rows = []
    for address in sorted(set(window) | set(cleartext) | set(old_hashes)):
        w, c = window.get(address), cleartext.get(address)
        seen = [u.last_seen for u in (w, c) if u and u.last_seen]
        rows.append({
            "account": address,
            "pop_before_smtp_relays": w.count if w else 0,
            "cleartext_logins": c.count if c else 0,
            "cleartext_protocols": ",".join(sorted(c.protocols)) if c else "",
            "legacy_hash": old_hashes.get(address) or "",
            "last_seen": max(seen).isoformat(timespec="seconds") if seen else "",
            "client_ips": ",".join(sorted((w.client_ips if w else set()) | (c.client_ips if c else set()))),
            "ports": ",".join(str(p) for p in sorted((w.ports if w else set()) | (c.ports if c else set()))),
            "mail_program": ", ".join(sorted((w.programs if w else set()) | (c.programs if c else set()))),
            "notices": len(sent.get(ids.get(address), [])),
        })
    summary = {
        "since": since.isoformat(timespec="seconds"),
        "cut_off_at_sunset": len(window),
        "cut_off_at_cutover": len(cleartext),
        "legacy_hashes": len(old_hashes),
        "weekly_pop_before_smtp_accounts": legacy.weekly_accounts(window),
        "weekly_cleartext_accounts": legacy.weekly_accounts(cleartext),
    }
    _emit(args.format, summary, rows)


def notify(args):
    ctx = open_context(args)
    config = ctx.config
    date = notices.phase_date(config, args.phase)
    if date is None:
        raise CommandError(f"no {args.phase} date is configured "
                           f"({'pop_before_smtp.sunset' if args.phase == 'sunset' else 'auth.tls_cutover'})")
    since = _moment(args.since) if args.since else ctx.now() - timedelta(days=30)
    finder = legacy.window_relays if args.phase == "sunset" else legacy.cleartext_logins
    affected = run(ctx, finder, since)
    template = (Path(args.template).read_text(encoding="utf-8") if args.template else
                notices.default_template(args.phase))
    ids = run(ctx, legacy.account_ids, list(affected))
    sent = skipped = 0
    for address, usage in sorted(affected.items()):
        if address not in ids:
            continue
        values = notices.values(config, address, date, usage.last_seen, usage.client_ips,
                                usage.protocols, usage.programs)
        message = notices.render(template, values, address, ctx.now(), config.server.hostname)
        if args.dry_run:
            print(f"would notify {address} (last seen {values['last_seen']} from {values['client_ips']})")
            continue
        if run(ctx, legacy.deliver_notice, ids[address], args.phase, message, ctx.now(),
               again=args.again):
            sent += 1
        else:
            skipped += 1
    if not args.dry_run:
        print(f"{sent} notice(s) put into INBOXes; {skipped} account(s) already notified "
              f"(--again to repeat)")


def _emit(fmt, summary, rows):
    columns = ["account", "pop_before_smtp_relays", "cleartext_logins", "cleartext_protocols",
               "legacy_hash", "last_seen", "client_ips", "ports", "mail_program", "notices"]
    if fmt == "json":
        print(json.dumps({"summary": summary, "accounts": rows}, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    else:
        print(f"since {summary['since']}: {summary['cut_off_at_sunset']} account(s) would be cut "
              f"off at the POP-before-SMTP sunset, {summary['cut_off_at_cutover']} at the TLS "
              f"cutover; {summary['legacy_hashes']} legacy password hash(es)")
        for week, n in summary["weekly_pop_before_smtp_accounts"].items():
            print(f"  {week}: {n} account(s) relayed through the window")
        for week, n in summary["weekly_cleartext_accounts"].items():
            print(f"  {week}: {n} account(s) sent a password without TLS")
        emit(SimpleNamespace(format="table"), rows, columns)


def register(groups) -> None:
    group = groups.add_parser("legacy", help="customers still on retiring methods").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("report", help="who relays through POP-before-SMTP, sends passwords "
                                        "without TLS, or has a legacy hash")
    p.add_argument("--since", help="start of the period (default: 30 days ago)")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.set_defaults(func=report)
    p = group.add_parser("notify", help="put a notice written for each affected account into "
                                        "its INBOX (once per account and phase)")
    p.add_argument("--phase", required=True, choices=["sunset", "cutover"])
    p.add_argument("--template", help="a text file: first line 'Subject: …', $placeholders")
    p.add_argument("--since", help="who counts as affected: activity since (default 30 days)")
    p.add_argument("--dry-run", action="store_true", help="list who would be notified")
    p.add_argument("--again", action="store_true", help="notify even those already notified")
    p.set_defaults(func=notify)
