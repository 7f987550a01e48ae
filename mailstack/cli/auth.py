"""``mailstack auth test ADDRESS``: does this password log in (``doveadm auth test``)?

Why through the realm's checker and not a hash comparison here: the answer must be the one
a client would get -- a disabled account fails, a legacy hash verifies (and is upgraded, as
at any login), the failure throttle is consulted and fed -- and the attempt is recorded as
a login event with protocol ``test``, so ``account show`` and the logs show who tested
what.  The password comes from standard input (``--password-stdin``) or a prompt, never
the command line, where ``ps`` and the shell history would keep it.

The throttle's memory is per process (``realm/throttle.py``), so a test counts against
the (client, account) pair only within this command: it neither sees the running
server's failures nor adds to them.  The event is recorded with TLS set: the password did
not cross a network, and the legacy report ("who sends passwords in the clear") must not
count it; protocol ``test`` opens no POP-before-SMTP window (only POP3 and IMAP do).
"""

from __future__ import annotations

import dataclasses

from twisted.cred.error import UnauthorizedLogin

from mailstack.cli.common import (
    EXIT_DATABASE, EXIT_FAILED, CommandError, open_context, read_password, with_reactor,
)
from mailstack.realm import hashing, throttle
from mailstack.realm.checker import AccountChecker, TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.store.db import Database

PROTOCOL = "test"


def _check(ctx, reactor, username: str, password: str, client_ip: str):
    """The checker's answer, on a database and a hasher wired to this reactor."""
    config = ctx.config
    db = Database(config.database_url(), reactor=reactor, threads=1,
                  busy_timeout_ms=config.database.busy_timeout_ms)
    hasher = hashing.PasswordHasher(hashing.make_context(config.auth.default_scheme),
                                    reactor=reactor, threads=1)
    db.start()
    hasher.start()
    limits = dataclasses.asdict(config.auth.throttle)
    checker = AccountChecker(db, hasher, ctx.clock, throttle.FailureThrottle(ctx.clock, **limits),
                             reactor=reactor, cache_seconds=0)
    credentials = SessionCredentials(username, password, PROTOCOL, client_ip, tls=True,
                                     mechanism="PLAIN")
    d = checker.requestAvatarId(credentials)

    def stop(result):
        hasher.stop()
        db.stop()
        return result
    return d.addBoth(stop)


def auth_test(args):
    ctx = open_context(args)
    password = read_password(args, confirm=False)
    try:
        account = with_reactor(lambda reactor: _check(ctx, reactor, args.address, password,
                                                       args.ip))
    except UnauthorizedLogin as e:             # the answer, not an error of the command
        print(f"failed: {args.address}: {e.args[0] if e.args else 'refused'}")
        raise SystemExit(EXIT_FAILED) from None
    except TemporaryAuthFailure as e:          # throttled, or the store is down
        code = EXIT_DATABASE if "store" in str(e) else EXIT_FAILED
        raise CommandError(f"failed: {args.address}: refused for now ({e})", code) from None
    print(f"ok: {account.address}")


def register(groups) -> None:
    group = groups.add_parser("auth", help="the login realm").add_subparsers(
        dest="verb", required=True, metavar="VERB")
    p = group.add_parser("test", help="check a password as a client's login would (recorded "
                                      "as a login event with protocol test)")
    p.add_argument("address")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of prompting")
    p.add_argument("--ip", default="127.0.0.1",
                   help="the client address to record and throttle by (default 127.0.0.1)")
    p.set_defaults(func=auth_test)
