"""The single wiring point: one reactor, every listener, the shared realm and store.

Why one place: configuration flows one way (ARCHITECTURE C6), and each object is built
with exactly what it uses -- the objects it calls and the settings section it reads -- so
that its constructor says what it depends on and a test can build it alone.  ``build``
creates the database, the password hasher, the portal, the queue runner and the folder
watch once, in an order that leaves nothing to fill in after construction: the notices
(``policy/notices.py``) before the cred checker that calls them after a login, the outbound
queue before the router that kicks it.  No bag of parts is handed around; what ``build``
returns (``Built``) is for its callers only.  Only here is the real reactor passed as the
business clock; tests pass ``twisted.internet.task.Clock`` instead.

Start and stop order for the POP3 maildrop locks (issue 13): ``build`` claims this node's
name and frees the locks left under it by a crashed predecessor before any listener
exists; ``PoolService.stopService`` ends the POP3 sessions and frees the node's locks
before the database pool stops (its sibling services are stopped in parallel, so the wait
must be inside it).  ``protocols/pop3_lease.py`` says what a node is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from twisted.application import service
from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks, dns, tls
from mailstack.config_sections import Config, ListenerConfig
from mailstack.delivery.routing import MessageRouter
from mailstack.delivery.sieve_delivery import Sieve
from mailstack.metrics import NO_METRICS, Metrics
from mailstack.policy import mx, notices, submission
from mailstack.policy.tls_required import TLSRequirement
from mailstack.prompt_tcp import PromptEndpoint
from mailstack.protocols import imap, managesieve, pop3, smtp
from mailstack.protocols.connection_limits import ConnectionLimits, descriptor_budget
from mailstack.protocols.live_sessions import LiveSessions
from mailstack.protocols.pop3_lease import MaildropLocks, claim_node
from mailstack.protocols.traces import Traces
from mailstack.realm import checker as checkers, hashing, portal as portals, throttle
from mailstack.reload import Reloader
from mailstack import service_trust as trust
from mailstack.store import directory, migrations
from mailstack.store.db import Database
from mailstack.store.watch import FolderWatch

log = Logger(namespace="mailstack.service")


class SchemaNotCurrent(RuntimeError):
    pass


class PoolService(service.Service):
    """Starts and stops the database and hashing thread pools with the process.

    At stop, the node's POP3 locks and live-session rows are freed first: a release queued
    after the pool has stopped never runs, and left every mid-poll user locked out after a
    SIGTERM.
    """

    def __init__(self, db: Database, hasher: hashing.PasswordHasher, locks=None,
                 sessions=None, pools=()):
        self.db, self.hasher, self.locks, self.sessions = db, hasher, locks, sessions
        self.pools = tuple(pools)       # other worker pools (message authentication)

    def startService(self):
        self.db.start()
        self.hasher.start()
        for pool in self.pools:
            pool.start()
        super().startService()

    @defer.inlineCallbacks
    def stopService(self):
        super().stopService()
        if self.locks is not None:
            yield self.locks.release_all()
        if self.sessions is not None:
            yield self.sessions.release_all()
        for pool in self.pools:
            pool.stop()
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
        # Bind before twistd drops privileges, so 25/110/143/465/587/993/995/4190 work as a user.
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
    """Replies leave with the read that asked for them (``prompt_tcp``)."""
    return PromptEndpoint(reactor, listener.port, listener.address,
                          tls_options if listener.tls == "implicit" else None)


def dev_certificate_names(config: Config) -> list[str]:
    """Every name a client of the demo or a test system reaches us by: the server and
    client-setup host names, and each hosted domain's autoconfig and autodiscover hosts
    (where AutodiscoverV1 redirects) and its MTA-STS policy host."""
    names = [config.server.hostname, config.client_setup.hostname]
    for domain in config.domains.hosted:
        names += [f"autoconfig.{domain}", f"autodiscover.{domain}", f"mta-sts.{domain}"]
    return [n for n in dict.fromkeys(names) if n]


def _tls_options(config: Config):
    t = config.tls
    cert, key = config.path(t.certificate), config.path(t.private_key)
    if t.generate_dev:
        if tls.ensure_dev_certificates(cert, key, config.path(t.ca_certificate),
                                       dev_certificate_names(config)):
            log.info("generated development certificates in {dir}", dir=str(cert.parent))
    if not cert.exists() or not key.exists():
        needs = [l.name or l.protocol for l in config.listeners if l.tls != "none"]
        if needs:
            raise FileNotFoundError(f"tls.certificate/tls.private_key: {cert} or {key} is missing")
        return None
    return tls.ReloadableServerTLS(tls.server_options(cert, key))


def spool_directory(config: Config):
    """Where SMTP DATA is spooled as it arrives (message/spool.py)."""
    return config.path(config.smtp.spool_dir or f"{config.server.state_dir}/spool")


@dataclass(frozen=True)
class Built:
    """What ``build`` made that its callers hold on to; nothing in the server is handed it.

    The entry points wait for the listeners; tests reach the store, the hasher, the folder
    watch and the spool directory of the server they started.
    """

    listeners: list[ListenerService]
    reloader: Reloader
    db: Database
    hasher: hashing.PasswordHasher
    watch: FolderWatch
    spool_dir: Path


def _database(config: Config, reactor, clock, metrics=NO_METRICS) -> Database:
    """The store, refused unless its schema is current; the hosted domains recorded."""
    db = Database(config.database_url(), reactor=reactor, threads=config.database.threads,
                  busy_timeout_ms=config.database.busy_timeout_ms,
                  body_budget=config.database.body_budget, metrics=metrics)
    if not migrations.is_current(db.engine):
        raise SchemaNotCurrent("the database schema is not current: run `mailstack db upgrade`")
    db.run_sync(directory.ensure_domains, config.domains.hosted, clocks.now(clock))
    return db


def _portal(config: Config, db, hasher, clock, reactor, after_login, metrics=NO_METRICS):
    """The realm and the portal every protocol logs in through (one cred checker)."""
    limits = dataclasses.asdict(config.auth.throttle)
    checker = checkers.AccountChecker(db, hasher, clock, throttle.FailureThrottle(clock, **limits),
                                      reactor=reactor, cache_seconds=config.auth.cache_seconds,
                                      after_login=after_login, metrics=metrics)
    realm = portals.MailRealm()
    return realm, portals.make_portal(realm, checker)


def _maildrop_locks(config: Config, db) -> MaildropLocks:
    """This node's POP3 locks, with those its dead predecessor left freed (before any listener)."""
    locks = MaildropLocks(db, claim_node(config.path(config.server.state_dir)))
    freed = locks.clear_left_over()
    if freed:
        log.info("freed {n} POP3 maildrop locks left by this node's previous process", n=freed)
    return locks


def _connection_limits(config: Config, sessions: LiveSessions, traces: Traces
                       ) -> ConnectionLimits:
    limits = ConnectionLimits(config.limits, descriptor_budget(config.limits.connections),
                              live=sessions, traces=traces)
    if limits.total < config.limits.connections:
        log.warn("limits.connections lowered to {n}: the descriptor limit allows no more",
                 n=limits.total)
    return limits


def _metrics(config: Config):
    """Counting costs nothing unless a ``metrics`` listener serves what is counted."""
    return Metrics() if any(l.protocol == "metrics" for l in config.listeners) else NO_METRICS


def _admission(config: Config, db, clock, reactor, node: str):
    """What sees every connection and login of every protocol: who is logged in
    (``mailstack who``), the protocol traces and the connection limits."""
    sessions = LiveSessions(db, clock, reactor, node)   # before any listener
    sessions.clear_left_over()
    traces = Traces(db, clock, reactor, config.path(config.server.state_dir) / "traces",
                    node.split(":", 1)[0])
    return sessions, traces, _connection_limits(config, sessions, traces)


def build(config: Config, reactor, clock=None) -> tuple[service.MultiService, Built]:
    clock = clock or reactor
    metrics = _metrics(config)
    db = _database(config, reactor, clock, metrics)
    hasher = hashing.PasswordHasher(hashing.make_context(config.auth.default_scheme),
                                    reactor=reactor, threads=config.auth.hash_threads,
                                    metrics=metrics)
    warner = notices.Warner(config, db, clock)     # before the checker that calls it
    realm, portal = _portal(config, db, hasher, clock, reactor, warner.after_login, metrics)
    tls_options = _tls_options(config)
    tls_requirement = TLSRequirement(clock, config.auth.tls_cutover)
    resolver = dns.Resolver(config.dns.nameservers, timeout=config.dns.timeout, reactor=reactor)
    locks = _maildrop_locks(config, db)
    spool_dir = spool_directory(config)
    spool_dir.mkdir(parents=True, exist_ok=True)
    sessions, traces, limits = _admission(config, db, clock, reactor, locks.node.name)
    metrics.sessions_from(lambda: limits.by_protocol)
    root = service.MultiService()
    authenticator = trust.authenticator(config, resolver, reactor)
    spam_scanner = trust.spam_scanner(config, reactor, metrics)
    PoolService(db, hasher, locks, sessions,
                [authenticator.pool] if authenticator else []).setServiceParent(root)
    sessions.setServiceParent(root)
    traces.setServiceParent(root)
    signer, queue = trust.outbound(config, db, clock, reactor, resolver, metrics, root)
    watch = FolderWatch(db, reactor, config.imap.idle_poll)
    watch.setServiceParent(root)
    srs = trust.srs(config, db, clock)
    spam_learner = trust.spam_learner(config, db, clock, reactor, metrics, root)   # after the pool
    sieve = Sieve(config.server.hostname, signer, srs)      # each customer's Sieve script
    router = MessageRouter(db, clock, on_queued=queue.kick, signer=signer, srs=srs, sieve=sieve)

    def smtp_factory(listener, tables):
        return smtp.build_factory(
            listener, tables.port_policy(db, clock, resolver, config, warner, metrics,
                                         authenticator=authenticator, srs=srs,
                                         spam_scanner=spam_scanner),
            router=router,
            db=db, clock=clock, portal=portal, tls_requirement=tls_requirement,
            settings=config.smtp, reflector_local_part=config.migration.reflector_local_part,
            hostname=config.server.hostname, tls_options=tls_options, limits=limits,
            spool_dir=spool_dir, metrics=metrics)

    factories = {     # protocol -> listener -> factory
        "pop3": lambda listener: pop3.POP3Factory(
            listener, settings=config.pop3, db=db, clock=clock, portal=portal,
            tls_options=tls_options, tls_requirement=tls_requirement, locks=locks,
            limits=limits),
        "imap": lambda listener: imap.IMAPFactory(
            listener, settings=config.imap, db=db, clock=clock, portal=portal,
            tls_options=tls_options, tls_requirement=tls_requirement, watch=watch,
            spool_dir=spool_dir, limits=limits, spam_learner=spam_learner),
        "sieve": lambda listener: managesieve.ManageSieveFactory(
            listener, settings=config.sieve, db=db, clock=clock, portal=portal,
            tls_options=tls_options, tls_requirement=tls_requirement, limits=limits),
        "http": lambda listener: _http().build_factory(config, db, clock, portal, resolver),
        "smtp": lambda listener: smtp_factory(listener, mx),
        "submission": lambda listener: smtp_factory(listener, submission),
        "metrics": lambda listener: _metrics_http().build_factory(metrics, queue.measure,
                                                                  reactor),
    }
    _register_avatars(realm, db, clock, config)
    listeners = [_listen(root, reactor, listener, factories[listener.protocol](listener),
                         tls_options) for listener in config.listeners]
    reloader = Reloader(config, listeners, tls_options, limits, db=db, clock=clock,
                        resolver=resolver, warner=warner, metrics=metrics,
                        authenticator=authenticator, srs=srs, spam_scanner=spam_scanner)
    return root, Built(listeners, reloader, db, hasher, watch, spool_dir)


def _http():
    """``protocols/http.py``, imported only for a configuration with an http listener: it
    brings ``twisted.web``, ``xml`` and ``plistlib``, 3 MB of the process (issue 16)."""
    from mailstack.protocols import http
    return http


def _metrics_http():
    """``protocols/metrics_http.py``, imported only for a metrics listener (as ``_http``)."""
    from mailstack.protocols import metrics_http
    return metrics_http


def _register_avatars(realm, db, clock, config: Config) -> None:
    """What a login of each protocol yields (the realm knows no protocol code)."""
    pop3.register_avatars(realm)
    imap.register_avatars(realm, db, clock)
    managesieve.register_avatars(realm)
    if any(l.protocol == "http" for l in config.listeners):
        _http().register_avatars(realm)
    smtp.register_avatars(realm)            # port 25's and submission's


def _listen(root, reactor, listener: ListenerConfig, factory, tls_options) -> ListenerService:
    ls = ListenerService(listener, _endpoint(reactor, listener, tls_options), factory)
    ls.setServiceParent(root)
    return ls
