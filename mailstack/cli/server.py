"""``mailstack serve``, ``reload``, ``db upgrade`` and ``demo``: run the process."""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

from mailstack import clock as clocks
from mailstack.cli.common import (EXIT_CONFIG, EXIT_DATABASE, CommandError, config_path,
                                  load_config, open_context)
from mailstack.store import directory, migrations
from mailstack.store.db import Database

DEMO_DOMAIN = "example.test"
DEMO_ACCOUNT = f"demo@{DEMO_DOMAIN}"
DEMO_CONFIG = """\
# mailstack demo configuration: SQLite, generated dev certificates, unprivileged ports.
# Every setting is explained in docs/configuration.md.
[server]
hostname = "mail.example.test"

[database]
url = "sqlite:///mailstack.db"

[client_setup]
# What autoconfig/Autodiscover tell mail programs: this machine and the demo's ports.
hostname = "localhost"
display_name = "mailstack demo"
imaps_port = 1993
imap_port = 1143
pop3s_port = 1995
pop3_port = 1110
submissions_port = 2465
submission_port = 2587
https_port = 8443
sieve_port = 4190

[tls]
certificate = "certs/server.pem"
private_key = "certs/server.key"
ca_certificate = "certs/ca.pem"
generate_dev = true

[domains]
hosted = ["example.test"]

[[listeners]]
name = "smtp"
protocol = "smtp"
address = "127.0.0.1"
port = 2525
tls = "starttls"

[[listeners]]
name = "https"
protocol = "http"
address = "127.0.0.1"
port = 8443
tls = "implicit"

[[listeners]]
name = "submission"
protocol = "submission"
address = "127.0.0.1"
port = 2587
tls = "starttls"

[[listeners]]
name = "submissions"
protocol = "submission"
address = "127.0.0.1"
port = 2465
tls = "implicit"

[[listeners]]
name = "sieve"
protocol = "sieve"
address = "127.0.0.1"
port = 4190
tls = "starttls"

[[listeners]]
name = "pop3"
protocol = "pop3"
address = "127.0.0.1"
port = 1110
tls = "starttls"

[[listeners]]
name = "pop3s"
protocol = "pop3"
address = "127.0.0.1"
port = 1995
tls = "implicit"

[[listeners]]
name = "imap"
protocol = "imap"
address = "127.0.0.1"
port = 1143
tls = "starttls"

[[listeners]]
name = "imaps"
protocol = "imap"
address = "127.0.0.1"
port = 1993
tls = "implicit"
"""


def db_upgrade(args):
    config = load_config(args)
    db = Database(config.database_url(), reactor=None, threads=1)
    try:
        before = migrations.current_revision(db.engine)
        migrations.upgrade(db.engine)
        after = migrations.current_revision(db.engine)
    except Exception as e:
        raise CommandError(f"database upgrade failed: {type(e).__name__}: {e}",
                           EXIT_DATABASE) from None
    finally:
        db.stop()
    print(f"database schema at revision {after}" + ("" if before == after else
                                                   f" (was {before or 'empty'})"))


def serve(args):
    """Run every listener; exit 3 with one line if any cannot bind (a busy port 25 must not
    leave a server without its MX running), and tell systemd READY=1 only when all are up."""
    from mailstack import memory
    memory.limit_heaps()        # before any thread exists (mailstack/memory.py)

    from twisted.internet import defer, reactor

    from mailstack import logs, service, systemd

    config = load_config(args)
    logs.start_stdout_logging(args.log_level, getattr(args, "log_format", "text"), reactor)
    try:
        root, built = service.build(config, reactor)
    except service.SchemaNotCurrent as e:
        raise CommandError(str(e), EXIT_DATABASE) from None
    except FileNotFoundError as e:
        raise CommandError(str(e), EXIT_CONFIG) from None
    failed = []

    def bind_failed(failure):
        failed.append(failure.getErrorMessage())
        if reactor.running:
            reactor.stop()

    def all_listening(_):
        systemd.notify("READY=1")

    _reload_on_sighup(reactor, config_path(args), built.reloader)
    pid_file = _write_pid_file(config)
    memory.ReturnFreeMemory(reactor).setServiceParent(root)
    reactor.addSystemEventTrigger("after", "shutdown", pid_file.unlink, missing_ok=True)
    root.privilegedStartService()
    root.startService()
    up = defer.gatherResults([l.listening for l in built.listeners], consumeErrors=True)
    up.addCallbacks(all_listening, lambda f: bind_failed(f.value.subFailure))
    reactor.addSystemEventTrigger("before", "shutdown", root.stopService)
    if failed:          # a bind refused at once fails before the reactor runs: it runs
        reactor.callWhenRunning(reactor.stop)    # only to stop the services in order
    reactor.run()
    if failed:
        raise CommandError(f"cannot listen: {failed[0]}", EXIT_CONFIG)


def pid_path(config):
    """Where ``serve`` records its process id, for ``mailstack reload`` (one per state_dir,
    as each node has its own)."""
    return config.path(config.server.state_dir) / "mailstack.pid"


def _write_pid_file(config):
    path = pid_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{os.getpid()}\n")
    return path


def _reload_on_sighup(reactor, path, reloader) -> None:
    """SIGHUP re-reads the configuration file and applies it (mailstack/reload.py); a
    file that does not load is logged and changes nothing."""
    from twisted.logger import Logger

    from mailstack import config as configs

    log = Logger(namespace="mailstack.reload")

    def reload():
        try:
            config = configs.load(path)
        except configs.ConfigError as e:
            log.error("reload refused, nothing changed: {error}", error=str(e))
            return
        reloader.apply(config)

    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(reload))


def reload_server(args):
    """``mailstack reload``: SIGHUP to the server of this configuration (its pid file)."""
    config = load_config(args)
    path = pid_path(config)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError):
        raise CommandError(f"no running server found ({path}): is `mailstack serve` running "
                           "with this configuration?") from None
    print(f"reload signalled to mailstack (pid {pid}); the log names what needs a restart")


def demo(args):
    """Create a demo installation in ``--dir`` (config, database, certificates), then serve."""
    directory_ = Path(args.dir)
    directory_.mkdir(parents=True, exist_ok=True)
    config_file = directory_ / "mailstack.toml"
    if not config_file.exists():
        config_file.write_text(DEMO_CONFIG, encoding="utf-8")
    args.config = str(config_file)
    db_upgrade(args)
    ctx = open_context(args)
    ctx.db.run_sync(directory.ensure_domains, [DEMO_DOMAIN], clocks.now(ctx.clock))
    if ctx.db.run_sync(directory.get_account, DEMO_ACCOUNT) is None:
        password = secrets.token_urlsafe(12)
        ctx.db.run_sync(directory.add_account, DEMO_ACCOUNT, ctx.hasher().hash(password),
                        ctx.now(), ctx.config.spam.blocker_default)
        print(f"demo account {DEMO_ACCOUNT} created; its password (shown only this once): "
              f"{password}")
    ctx.db.stop()
    print(f"config: {config_file}; SMTP 127.0.0.1:2525, submission 2587/2465, POP3 1110/1995, "
          f"IMAP 1143/1993, autoconfig https://127.0.0.1:8443; "
          f"dev CA certificate: {directory_ / 'certs' / 'ca.pem'}")
    sys.stdout.flush()
    serve(args)


def register(groups) -> None:
    p = groups.add_parser("reload", help="re-read the configuration and certificates in the "
                                         "running server (SIGHUP)")
    p.set_defaults(func=reload_server)
    p = groups.add_parser("serve", help="run every configured listener in one process")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="json: one JSON object per line, for log shippers")
    p.set_defaults(func=serve)
    db = groups.add_parser("db", help="database schema").add_subparsers(dest="verb", required=True)
    p = db.add_parser("upgrade", help="create or upgrade the schema to the current revision")
    p.set_defaults(func=db_upgrade)
    p = groups.add_parser("demo", help="set up a demo installation (SQLite, dev certificates, "
                                        "unprivileged ports, demo account) and serve it")
    p.add_argument("--dir", default="var/demo", help="where the demo keeps its files")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    p.set_defaults(func=demo)
