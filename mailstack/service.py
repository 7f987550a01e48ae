"""The single wiring point: one reactor, every listener, the shared realm and store.

Why one place: configuration flows one way (ARCHITECTURE C6).  ``build`` reads the frozen
config, creates the database, the password hasher and the portal once, and hands each
protocol factory only what it needs.  Only here is the real reactor passed as the business
clock; tests pass ``twisted.internet.task.Clock`` instead.

Start and stop order for the POP3 maildrop locks (issue 13): ``build_parts`` claims this
node's name and frees the locks left under it by a crashed predecessor before any listener
exists; ``PoolService.stopService`` ends the POP3 sessions and frees the node's locks
before the database pool stops (its sibling services are stopped in parallel, so the wait
must be inside it).  ``protocols/pop3_lease.py`` says what a node is.
"""

from __future__ import annotations

import dataclasses
import importlib
import ipaddress
from dataclasses import dataclass, field

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.logger import Logger

from mailstack import clock as clocks, dns, tls
from mailstack.config_sections import Config, ListenerConfig
from mailstack.delivery import outbound
from mailstack.policy import notices
from mailstack.policy.tls_required import TLSRequirement
from mailstack.protocols.connection_limits import ConnectionLimits, descriptor_budget
from mailstack.protocols.pop3_lease import MaildropLocks, claim_node
from mailstack.realm import checker as checkers, hashing, portal as portals, throttle
from mailstack.store import directory, migrations
from mailstack.store.db import Database
from mailstack.store.watch import FolderWatch

log = Logger(namespace="mailstack.service")


class SchemaNotCurrent(RuntimeError):
    pass


@dataclass
class Parts:
    """What the protocol factories are built from; one instance per process."""

    config: Config
    reactor: object
    clock: object
    db: Database
    hasher: hashing.PasswordHasher
    realm: portals.MailRealm
    portal: object
    tls_options: object | None
    tls_requirement: TLSRequirement
    resolver: dns.Resolver
    listeners: list = field(default_factory=list)
    outbound: object = None   # the queue runner, once built
    watch: object = None      # folder change notices for IMAP IDLE
    warner: object = None     # daily notices in the migration warning periods
    maildrop_locks: object = None   # POP3 locks: this node's name and live leases
    limits: object = None     # connection admission, shared by every listener
    spool_dir: object = None  # where SMTP DATA is spooled as it arrives


class PoolService(service.Service):
    """Starts and stops the database and hashing thread pools with the process.

    At stop, the node's POP3 locks are freed first: a release queued after the pool has
    stopped never runs, and left every mid-poll user locked out after a SIGTERM.
    """

    def __init__(self, db: Database, hasher: hashing.PasswordHasher, locks=None):
        self.db, self.hasher, self.locks = db, hasher, locks

    def startService(self):
        self.db.start()
        self.hasher.start()
        super().startService()

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.locks is not None:
            yield self.locks.release_all()
        self.hasher.stop()
        self.db.stop()


class ListenerService(service.Service):
    """Listens on one endpoint; ``listening`` fires with the port (tests read port 0's number)."""

    def __init__(self, listener: ListenerConfig, endpoint, factory):
        self.listener, self.endpoint, self.factory = listener, endpoint, factory
        self.port = None
        self.listening = defer.Deferred()
        self.setName(listener.name or f"{listener.protocol}-{listener.port}")

    def privilegedStartService(self):
        # Bind before twistd drops privileges, so 25/110/143/465/587/993/995 work as a user.
        super().privilegedStartService()
        d = self.endpoint.listen(self.factory)
        d.addCallback(self._listening)
        d.addErrback(self._failed)

    def _listening(self, port):
        self.port = port
        address = port.getHost()
        log.info("listening: {name} on {host}:{port} (tls={tls})", name=self.name,
                 host=address.host, port=address.port, tls=self.listener.tls)
        self.listening.callback(port)

    def _failed(self, failure):
        log.failure("cannot listen: {name}", failure=failure, name=self.name)
        self.listening.errback(failure)

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.port is not None:
            yield self.port.stopListening()
            self.port = None


def _endpoint(reactor, listener: ListenerConfig, tls_options):
    v6 = ipaddress.ip_address(listener.address).version == 6
    if listener.tls == "implicit":
        return endpoints.SSL4ServerEndpoint(reactor, listener.port, tls_options,
                                            interface=listener.address)
    cls = endpoints.TCP6ServerEndpoint if v6 else endpoints.TCP4ServerEndpoint
    return cls(reactor, listener.port, interface=listener.address)


def _tls_options(config: Config):
    t = config.tls
    cert, key = config.path(t.certificate), config.path(t.private_key)
    if t.generate_dev:
        if tls.ensure_dev_certificates(cert, key, config.path(t.ca_certificate),
                                       [config.server.hostname]):
            log.info("generated development certificates in {dir}", dir=str(cert.parent))
    if not cert.exists() or not key.exists():
        needs = [l.name or l.protocol for l in config.listeners if l.tls != "none"]
        if needs:
            raise FileNotFoundError(f"tls.certificate/tls.private_key: {cert} or {key} is missing")
        return None
    return tls.server_options(cert, key)


def spool_directory(config: Config):
    """Where SMTP DATA is spooled as it arrives (message/spool.py)."""
    return config.path(config.smtp.spool_dir or f"{config.server.state_dir}/spool")


def build_parts(config: Config, reactor, clock=None) -> Parts:
    clock = clock or reactor
    db = Database(config.database_url(), reactor=reactor, threads=config.database.threads,
                  busy_timeout_ms=config.database.busy_timeout_ms,
                  body_budget=config.database.body_budget)
    if not migrations.is_current(db.engine):
        raise SchemaNotCurrent("the database schema is not current: run `mailstack db upgrade`")
    db.run_sync(directory.ensure_domains, config.domains.hosted, clocks.now(clock))
    hasher = hashing.PasswordHasher(hashing.make_context(config.auth.default_scheme),
                                    reactor=reactor, threads=config.auth.hash_threads)
    limits = dataclasses.asdict(config.auth.throttle)
    checker = checkers.AccountChecker(db, hasher, clock, throttle.FailureThrottle(clock, **limits),
                                      reactor=reactor, cache_seconds=config.auth.cache_seconds)
    realm = portals.MailRealm()
    parts = Parts(config, reactor, clock, db, hasher, realm, portals.make_portal(realm, checker),
                  _tls_options(config), TLSRequirement(clock, config.auth.tls_cutover),
                  dns.Resolver(config.dns.nameservers, timeout=config.dns.timeout, reactor=reactor))
    parts.maildrop_locks = MaildropLocks(db, claim_node(config.path(config.server.state_dir)))
    freed = parts.maildrop_locks.clear_left_over()
    if freed:
        log.info("freed {n} POP3 maildrop locks left by this node's previous process", n=freed)
    parts.spool_dir = spool_directory(config)
    parts.spool_dir.mkdir(parents=True, exist_ok=True)
    parts.limits = ConnectionLimits(config.limits, descriptor_budget(config.limits.connections))
    if parts.limits.total < config.limits.connections:
        log.warn("limits.connections lowered to {n}: the descriptor limit allows no more",
                 n=parts.limits.total)
    parts.warner = notices.Warner(parts)
    checker.after_login = parts.warner.after_login
    return parts


def _protocol_modules(config: Config) -> dict:
    """The front ends the listeners need, by protocol name.

    Each exposes ``build_factory(parts, listener)`` and ``register_avatars(parts)``.
    """
    names = sorted({listener.protocol for listener in config.listeners})
    return {name: importlib.import_module(f"mailstack.protocols.{name}") for name in names}


def build(config: Config, reactor, clock=None) -> tuple[service.MultiService, Parts]:
    parts = build_parts(config, reactor, clock)
    root = service.MultiService()
    PoolService(parts.db, parts.hasher, parts.maildrop_locks).setServiceParent(root)
    parts.outbound = outbound.build_service(parts)
    parts.outbound.setServiceParent(root)
    parts.watch = FolderWatch(parts.db, reactor, config.imap.idle_poll)
    parts.watch.setServiceParent(root)
    modules = _protocol_modules(config)
    for module in modules.values():
        module.register_avatars(parts)
    for listener in config.listeners:
        factory = modules[listener.protocol].build_factory(parts, listener)
        ls = ListenerService(listener, _endpoint(reactor, listener, parts.tls_options), factory)
        ls.setServiceParent(root)
        parts.listeners.append(ls)
    return root, parts
