"""``mailstack account import FILE --format passwd|dovecot|htpasswd|csv``."""

from __future__ import annotations

import sys
from pathlib import Path

from mailstack.cli.common import CommandError, open_context, run
from mailstack.realm import imports
from mailstack.store import directory


def account_import(args):
    ctx = open_context(args)
    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    hasher = ctx.hasher()
    records, errors = [], []
    for item in imports.parse(text, args.format, domain=args.domain, context=hasher.context):
        (errors if isinstance(item, imports.LineError) else records).append(item)
    for error in errors:
        print(f"mailstack: skipped {error}", file=sys.stderr)
    if errors and args.strict:
        raise CommandError(f"{len(errors)} bad line(s); nothing imported (--strict)")
    rows = [(r.line, r.address, r.password_hash or hasher.hash(r.plaintext), r.aliases)
            for r in records]
    result = run(ctx, directory.import_accounts, rows, ctx.now(), with_aliases=args.aliases,
                 spam_blocker=ctx.config.spam.blocker_default)
    for line, why in result.conflicts:
        print(f"mailstack: line {line}: {why}", file=sys.stderr)
    legacy = sum(1 for _, _, h, _ in rows if hasher.is_legacy(h))
    print(f"imported {result.imported}, unchanged {result.unchanged}, conflicts "
          f"{len(result.conflicts)}, bad lines {len(errors)}; domains created "
          f"{result.domains_created}, aliases created {result.aliases_created}; "
          f"{legacy} legacy hash(es) will be replaced at their next login")


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CommandError(f"{path}: not UTF-8 text") from None


def register(account_verbs) -> None:
    p = account_verbs.add_parser("import", help="create accounts from an old system, keeping "
                                                "their password hashes")
    p.add_argument("file", help="the file, or - for standard input")
    p.add_argument("--format", required=True, choices=["passwd", "dovecot", "htpasswd", "csv"])
    p.add_argument("--domain", help="for user names without @domain")
    p.add_argument("--aliases", action="store_true", help="also create the aliases (csv)")
    p.add_argument("--strict", action="store_true", help="any bad line stops the import")
    p.set_defaults(func=account_import)
