"""What every admin command shares: config, database, passwords, errors, output."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from mailstack import clock as clocks, config as configs
from mailstack.config_sections import Config
from mailstack.realm import hashing
from mailstack.store.db import Database

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFIG, EXIT_DATABASE = 0, 1, 2, 3, 4
DEFAULT_CONFIG = "mailstack.toml"


class CommandError(Exception):
    """A one-line error for the operator; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code


def config_path(args) -> Path:
    return Path(args.config or os.environ.get("MAILSTACK_CONFIG") or DEFAULT_CONFIG)


def load_config(args) -> Config:
    path = config_path(args)
    if not path.exists():
        raise CommandError(f"{path}: no such configuration file: name one with --config FILE "
                           "or $MAILSTACK_CONFIG", EXIT_CONFIG)
    try:
        return configs.load(path)
    except configs.ConfigError as e:
        raise CommandError(str(e), EXIT_CONFIG) from None


@dataclass
class Context:
    """The services a command runs against; business time is the wall clock here."""

    config: Config
    db: Database
    clock: object

    def now(self):
        return clocks.now(self.clock)

    def hasher(self) -> hashing.PasswordHasher:
        return hashing.PasswordHasher(hashing.make_context(self.config.auth.default_scheme))

    def close(self) -> None:
        """The engine's connections closed now, not whenever the process exits."""
        self.db.engine.dispose()


def open_context(args, *, check_schema: bool = True) -> Context:
    """The config and its store; with ``check_schema``, the schema must be current and the
    ``[domains] hosted`` list is applied, so ``account add`` works before the first ``serve``.
    ``main`` closes it when the command is done (``args.opened``)."""
    from mailstack.store import migrations

    config = load_config(args)
    db = Database(config.database_url(), reactor=None, threads=1,
                  busy_timeout_ms=config.database.busy_timeout_ms)
    context = Context(config, db, clocks.WallClock())
    args.opened.append(context)
    if check_schema:
        try:
            current = migrations.is_current(db.engine)
        except Exception as e:  # cannot connect at all
            raise database_unavailable(db, e) from None
        if not current:
            raise CommandError("the database schema is not current: run `mailstack db upgrade`",
                               EXIT_DATABASE)
        apply_hosted_domains(context)
    return context


def apply_hosted_domains(ctx: Context) -> None:
    """``[domains] hosted`` written to the store (the server does it at start too)."""
    from mailstack.store import directory

    if ctx.config.domains.hosted:
        ctx.db.run_sync(directory.ensure_domains, ctx.config.domains.hosted, ctx.now())


def database_unavailable(db: Database, error: Exception) -> CommandError:
    """One line naming where the database is and why it cannot be reached; never the
    password of the URL (SQLAlchemy's ``render_as_string`` hides it)."""
    where = db.engine.url.render_as_string(hide_password=True)
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    reason = reason[0] if reason else type(error).__name__
    return CommandError(f"database unavailable at {where}: {reason}", EXIT_DATABASE)


def run(ctx: Context, fn, *args, **kwargs):
    """A store function in one transaction; not-found and conflicts become one-line errors."""
    from mailstack.store.errors import Conflict, NotFound

    try:
        return ctx.db.run_sync(fn, *args, **kwargs)
    except (NotFound, Conflict) as e:
        raise CommandError(str(e)) from None


def with_reactor(fn):
    """Run ``fn(reactor)`` (which may return a Deferred) to completion; return its result.

    For the few commands that ask DNS now (``dnsbl test``, ``why``): twisted.names needs a
    running reactor, and ``task.react`` would exit the process.
    """
    from twisted.internet import defer, reactor

    outcome = []

    def go():
        d = defer.maybeDeferred(fn, reactor)
        d.addBoth(lambda result: (outcome.append(result), reactor.stop()))

    reactor.callWhenRunning(go)
    reactor.run(installSignalHandlers=False)
    result = outcome[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


def operator() -> str:
    """Who runs the command, for the ``added_by`` of blocks and whitelist entries."""
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def read_password(args, *, confirm: bool = True, min_length: int = 1) -> str:
    """From ``--password-stdin`` or an interactive prompt; never from the command line.
    Shorter than ``min_length`` ([auth] min_password_length) is refused."""
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Repeat password: ") != password:
            raise CommandError("the passwords do not match")
    else:
        raise CommandError("no terminal to prompt on: pass --password-stdin and write the "
                           "password to standard input", EXIT_USAGE)
    if not password:
        raise CommandError("empty password")
    if len(password) < min_length:
        raise CommandError(f"the password is shorter than {min_length} characters "
                           "([auth] min_password_length)")
    return password


# Terminal control characters (newline and tab excepted): what clients wrote (HELO, a
# pasted bounce, a reply quoting an address) reaches the desk's terminal made visible, so an
# escape sequence in it cannot drive the terminal.
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(value) -> str:
    """``value`` as text with terminal control characters shown as ``\\xNN``."""
    return CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def emit(args, rows: list[dict], columns: list[str]) -> None:
    """Print rows as an aligned table (control characters made visible: ``printable``) or,
    with ``--format json``, as a JSON list (which escapes them itself)."""
    if getattr(args, "format", "table") == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        return
    rows = [{c: printable(row.get(c, "")) for c in columns} for row in rows]
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths)).rstrip())


def add_format(parser) -> None:
    parser.add_argument("--format", choices=["table", "json"], default="table")
