"""``mailstack config show|check``: what ``postconf -n``/``doveconf -n`` and ``postfix check``
give an operator.

``show`` prints the effective settings, defaults resolved, one ``section.key = value`` line
each (``--changed``: only those the file sets to something else than the default).
``check`` looks at what start-up will meet, one line per finding (``ok``, ``warning``,
``error``), and exits 1 when there is an error: the certificate and its key (do they match,
do they name the host, when do they expire), the database (reachable, schema current), the
DNS resolvers (do they answer, does the server's host name resolve) and the listeners'
ports (free, or already taken -- by a running server or something else).
"""

from __future__ import annotations

import dataclasses
import datetime
import errno
import json
import socket

from mailstack import clock as clocks, dns
from mailstack.cli import common
from mailstack.config_sections import Config

EXPIRY_WARNING = datetime.timedelta(days=14)
# Settings whose values are never printed (the SRS secrets are what keeps bounce addresses
# from being an open relay: srs.py; rspamd's controller password lets anyone poison the
# spam statistics); ``show`` says how many secrets there are, or that the password is set.
HIDDEN = frozenset({"forwarding.srs_secrets", "spam.controller_password"})


def settings(config: Config) -> dict[str, object]:
    """Every setting of ``config`` by its dotted key, in file order."""
    found = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name == "base_dir":
            continue
        if f.name == "listeners":
            for i, listener in enumerate(value):
                for key, item in dataclasses.asdict(listener).items():
                    found[f"listeners[{i}].{key}"] = item
            continue
        for key, item in dataclasses.asdict(value).items():
            _flatten(found, f"{f.name}.{key}", item)
    for key in HIDDEN:
        if found.get(key):
            value = found[key]
            found[key] = ("(set, not shown)" if isinstance(value, str)
                          else f"({len(value)} set, not shown)")
    return found


def _flatten(found: dict, key: str, value) -> None:
    if isinstance(value, dict):
        for sub, item in value.items():
            _flatten(found, f"{key}.{sub}", item)
    else:
        found[key] = value


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if value is None:
        return "(not set)"
    return json.dumps(value) if isinstance(value, str) else str(value)


def show(args) -> None:
    config = common.load_config(args)
    effective = settings(config)
    if args.changed:
        defaults = settings(Config())
        effective = {k: v for k, v in effective.items() if defaults.get(k, object()) != v}
    if args.format == "json":
        print(json.dumps(effective, indent=2, default=str))
        return
    for key, value in effective.items():
        print(f"{key} = {_toml(value)}")


# --- check -------------------------------------------------------------------------------

def check(args) -> None:
    config = common.load_config(args)
    now = clocks.now(clocks.WallClock())
    findings = [*_certificate(config, now), *_database(args), *_dns(config),
                *_ports(config)]
    for level, text in findings:
        print(f"{level}: {text}")
    errors = sum(level == "error" for level, _ in findings)
    if errors:
        raise common.CommandError(f"{errors} error(s): see above")


def _certificate(config: Config, now: datetime.datetime):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not any(listener.tls != "none" for listener in config.listeners):
        return [("ok", "tls: no listener uses TLS")]
    t = config.tls
    cert_path, key_path = config.path(t.certificate), config.path(t.private_key)
    try:
        chain = x509.load_pem_x509_certificates(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError) as e:
        hint = " (tls.generate_dev makes one at start)" if t.generate_dev else ""
        return [("error", f"tls.certificate/tls.private_key: cannot load {cert_path} or "
                          f"{key_path}: {e}{hint}")]
    cert, public = chain[0], serialization.PublicFormat.SubjectPublicKeyInfo
    found = []
    if cert.public_key().public_bytes(serialization.Encoding.DER, public) != \
            key.public_key().public_bytes(serialization.Encoding.DER, public):
        found.append(("error", f"tls.private_key: {key_path} does not match {cert_path}"))
    until = cert.not_valid_after_utc
    if until <= now:
        found.append(("error", f"tls.certificate: {cert_path} expired on {until:%Y-%m-%d}"))
    elif until - now < EXPIRY_WARNING:
        found.append(("warning", f"tls.certificate: {cert_path} expires on {until:%Y-%m-%d}"))
    else:
        found.append(("ok", f"tls.certificate: valid until {until:%Y-%m-%d}"))
    try:
        names = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if config.server.hostname not in names:
        found.append(("warning", f"tls.certificate: does not name server.hostname "
                                 f"{config.server.hostname} (it names {', '.join(names) or 'none'})"))
    return found


def _database(args):
    try:
        ctx = common.open_context(args)
    except common.CommandError as e:
        return [("error", f"database: {e}")]
    ctx.db.stop()
    return [("ok", "database: reachable, schema current")]


def _dns(config: Config):
    hostname = config.server.hostname

    def ask(reactor):
        resolver = dns.Resolver(config.dns.nameservers, timeout=config.dns.timeout,
                                reactor=reactor)
        return resolver.addresses(hostname)

    outcome = common.with_reactor(ask)
    servers = ", ".join(config.dns.nameservers) or "the system's resolvers"
    if isinstance(outcome, dns.TempFail):
        return [("error", f"dns: no answer from {servers} ({outcome.reason})")]
    if isinstance(outcome, dns.NotFound):
        return [("warning", f"dns: server.hostname {hostname} does not resolve ({servers})")]
    return [("ok", f"dns: {hostname} is {', '.join(outcome.value)} ({servers})")]


def _ports(config: Config):
    found = []
    for listener in config.listeners:
        name = f"listeners: {listener.name or listener.protocol} {listener.address}:{listener.port}"
        family = socket.AF_INET6 if ":" in listener.address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((listener.address, listener.port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    found.append(("warning", f"{name} is in use (a running server, or another "
                                             "program: `ss -ltnp` tells)"))
                elif e.errno == errno.EACCES:
                    found.append(("error", f"{name}: a port under 1024 needs root or "
                                           "CAP_NET_BIND_SERVICE"))
                else:
                    found.append(("error", f"{name}: {e.strerror}"))
                continue
        found.append(("ok", f"{name} is free"))
    return found


def register(groups) -> None:
    group = groups.add_parser("config", help="the effective settings, and what start-up will "
                                             "meet").add_subparsers(dest="verb", required=True,
                                                                    metavar="VERB")
    p = group.add_parser("show", help="every setting with defaults resolved (postconf, doveconf)")
    p.add_argument("--changed", action="store_true", help="only settings not at their default")
    common.add_format(p)
    p.set_defaults(func=show)
    p = group.add_parser("check", help="certificate, database, DNS and ports, one line each "
                                       "(postfix check); exit 1 on an error")
    p.set_defaults(func=check)
