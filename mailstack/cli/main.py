"""The ``mailstack`` command: parse, dispatch, turn errors into one line and an exit code."""

from __future__ import annotations

import argparse
import sys

from mailstack.cli import (
    antispam, auth, common, config_cmd, directory, dkim, dns_records, explain, legacy, mailbox,
    op25b, policy, queue, quota, server, sessions, sieve, spam, support, traces,
)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mailstack")
    except metadata.PackageNotFoundError:   # run from a source tree that is not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailstack", description="Administer and run a mailstack mail server.",
        epilog="Exit codes: 0 ok, 1 failed, 2 usage, 3 configuration, 4 database.")
    parser.add_argument("--version", action="version", version=f"mailstack {_version()}")
    parser.add_argument("--config", help="configuration file (default: $MAILSTACK_CONFIG or "
                                         "./mailstack.toml)")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    directory.register(groups)
    mailbox.register(groups)
    quota.register(groups)
    auth.register(groups)
    server.register(groups)
    config_cmd.register(groups)
    sessions.register(groups)
    traces.register(groups)
    policy.register(groups)
    antispam.register(groups)
    support.register(groups)
    explain.register(groups)
    dns_records.register(groups)
    dkim.register(groups)
    queue.register(groups)
    legacy.register(groups)
    op25b.register(groups)
    sieve.register(groups)
    spam.register(groups)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.opened = []                # the contexts the command opens, closed when it is done
    try:
        args.func(args)
    except common.CommandError as e:
        print(f"mailstack: error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    finally:
        for context in args.opened:
            context.close()
    return common.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
