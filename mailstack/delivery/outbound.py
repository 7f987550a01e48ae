"""The queue runner: delivers queued mail by MX lookup, retries, and bounces.

Why its own runner (not Twisted's relaymanager): the queue is in the database so that a 250
survives a crash and several processes can share the work, and retries read the injected
clock.  Each pass claims due recipients, groups them per message and destination domain
(one connection carries all recipients of a message at a domain), resolves the MX hosts
(null MX and NXDOMAIN bounce, a DNS failure retries; RFC 5321 §5.1 implicit MX), tries the
hosts in preference order, and records every recipient's outcome in one transaction: 2xx
delivered, 5xx bounced, 4xx or no connection retried on the schedule until
``max_queue_age``, then bounced.  ``[delivery] smarthost`` sends everything through one relay.

MTA-STS (RFC 8461): before the hosts are tried, the destination's policy is found
(``sts_policies.py``); in ``enforce`` mode only the MX hosts its ``mx`` patterns match are
tried, each must pass the TLS check (``tls_check.py``), and a failure is temporary like
any other (retried, then bounced after ``max_queue_age`` with the reason).  Each session
judged under a policy, and each failure to find one, is counted for TLS-RPT in the
transaction that records the outcome (``store/outbound_tls.py``).  Not through a
smarthost: the relay is trusted to apply it.

Network timeouts run on the reactor (network time); due times, retries and expiry on the
business clock.

The body is read only when there is a host to send it to: a DNS failure or a bounce by
route costs no read of a 25 MB message, and a bounce quotes the header read on its own
(issue 13, case 5).

Security: mail goes only to the hosts the recipient domain's MX records (or the configured
smarthost) name; a DNS failure retries and never bounces, so an unreachable resolver loses
no mail; claims are leases, so a crash in mid-delivery delays mail by LEASE_SECONDS and
loses none (it may deliver it twice: the remote 250 and our record are not one
transaction); ``[delivery] concurrency`` bounds the conversations at once.  For a domain
with an MTA-STS ``enforce`` policy a forged MX answer or a stripped STARTTLS gets no mail
(the host must match the policy and prove its name by PKIX).  Not guarded for other
domains: the MX answers are not authenticated (no DNSSEC, no DANE; see ``dns.py`` and
``smtp_client.py``), so a forged answer redirects mail; an MX or smarthost that names a
loopback or private address is used as given (no "mail loops back to myself" check).
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from datetime import timedelta

from twisted.application import service
from twisted.internet import defer, endpoints, task
from twisted.logger import Logger

from mailstack import clock as clocks, dns
from mailstack.delivery import bounce, retry, sts_policies
from mailstack.delivery.smtp_client import ClientFactory, Job, Outcome
from mailstack.delivery.tls_check import NO_CHECK, TLSCheck
from mailstack.dkim.signer import NO_SIGNER
from mailstack.metrics import NO_METRICS
from mailstack.store import outbound_tls, queue, queue_size
from mailstack.store.outbound_tls import Session

log = Logger(namespace="mailstack.delivery")
LEASE_SECONDS = 900
BATCH = 200


class Route:
    """Where to connect for a domain: [(address, port, MX host name)], or a final
    failure/temporary one."""

    def __init__(self, hosts=(), bounce_reply=None, retry_reply=None):
        self.hosts, self.bounce_reply, self.retry_reply = list(hosts), bounce_reply, retry_reply


class OutboundQueue(service.Service):
    name = "outbound-queue"

    def __init__(self, db, clock, reactor, resolver: dns.Resolver, settings, hostname: str,
                 metrics=NO_METRICS, signer=NO_SIGNER, sts=None):
        """``settings`` is the ``[delivery]`` section; ``hostname`` our HELO and bounces'.

        ``clock`` is business time (due times, retries, expiry); ``reactor`` network time
        (connections and their timeouts); ``metrics`` counts each recipient's outcome and
        holds the queue's size (``measure``); ``signer`` DKIM-signs the bounces that leave;
        ``sts`` (``sts_policies.StsPolicies``, None: no MTA-STS) the destinations' policies."""
        self.db, self.clock, self.reactor, self.metrics = db, clock, reactor, metrics
        self.signer, self.sts = signer, sts
        self.resolver, self.settings, self.hostname = resolver, settings, hostname
        self.loop = task.LoopingCall(self.run_once)
        self.loop.clock = clock
        self.limit = defer.DeferredSemaphore(self.settings.concurrency)
        self._running = None
        self._again = False

    def startService(self):
        super().startService()
        self.loop.start(self.settings.queue_interval, now=True)

    def stopService(self):
        # Do not wait for a pass in flight (a slow remote server would hold up shutdown):
        # its claims expire and the next start, or another process, takes them over.
        super().stopService()
        if self.loop.running:
            self.loop.stop()

    def kick(self) -> None:
        """Look for due mail now (after an enqueue), without waiting for the interval."""
        self.reactor.callLater(0, self.run_once)

    @defer.inlineCallbacks
    def measure(self):
        """Set the queue gauges from the store (a scrape of the metrics endpoint asks)."""
        size = yield self.db.read(queue_size.measure)
        age = 0.0
        if size.oldest is not None:
            age = (clocks.now(self.clock) - size.oldest).total_seconds()
        self.metrics.queue(size.recipients, age)

    def run_once(self):
        if self._running is not None:
            self._again = True
            return self._running
        self._running = self._pass()
        self._running.addErrback(lambda f: log.failure("queue run failed", f))
        self._running.addBoth(self._ran)
        return None   # LoopingCall must not wait for a long pass

    def _ran(self, _):
        self._running = None
        if self._again and self.running:
            self._again = False
            self.kick()

    @defer.inlineCallbacks
    def _pass(self):
        while self.running:
            now = clocks.now(self.clock)
            due = yield self.db.run(queue.claim_due, now, now + timedelta(seconds=LEASE_SECONDS),
                                    BATCH)
            if not due:
                return
            groups = defaultdict(list)
            for item in due:
                groups[(item.message_id, item.domain)].append(item)
            yield defer.gatherResults([self.limit.run(self._deliver_group, items)
                                       for items in groups.values()], consumeErrors=True)
            if len(due) < BATCH:
                return

    @defer.inlineCallbacks
    def _deliver_group(self, items):
        message_id = items[0].message_id
        stored = yield self.db.read(queue.waiting, message_id)
        if stored is None:
            return
        domain = items[0].domain
        route = yield self._route(domain)
        outcome, sessions = Outcome(), []        # sessions: counted for TLS-RPT
        if route.bounce_reply:
            outcome.error, outcome.temporary = route.bounce_reply, False
        elif route.retry_reply:
            outcome.error = route.retry_reply
        else:
            hosts = yield self._under_policy(domain, route.hosts, sessions)
            outcome = yield self._send(hosts, stored, message_id,
                                       tuple(i.recipient for i in items), sessions)
            if outcome is None:                           # removed meanwhile (queue CLI)
                return
        results = []              # counted once the transaction that records them commits
        yield self.signer.ready()         # a bounce that leaves is signed in the transaction
        bounce_to = yield self.db.run(self._record, items, message_id, stored, outcome,
                                      clocks.now(self.clock), results, sessions)
        for result in results:
            self.metrics.outbound(result)
        if bounce_to:
            self.kick()

    @defer.inlineCallbacks
    def _under_policy(self, domain: str, hosts, sessions):
        """[(address, port, TLSCheck)]: the hosts to try under the domain's MTA-STS policy
        (RFC 8461 §4.1: in enforce mode only those its mx patterns match; in testing mode
        all, a mismatch counted), and what each connection's TLS must prove."""
        if self.sts is None or self.settings.smarthost:
            return [(address, port, NO_CHECK) for address, port, _ in hosts]
        applied = yield self.sts.for_domain(domain)
        policy = applied.policy
        if applied.failure is not None:
            sessions.append(Session(domain, "sts", "", applied.failure.result_type))
        if policy is None:
            return [(address, port, NO_CHECK) for address, port, _ in hosts]
        allowed = []
        for address, port, mx in hosts:
            named = sts_policies.allows(policy, mx)
            if not named and policy.mode == "enforce":      # never tried: counted as failed
                sessions.append(Session(domain, "sts", policy.policy_id, "validation-failure",
                                        mx, address))
                continue
            allowed.append((address, port, TLSCheck(policy.mode, mx, self.sts.anchors, domain,
                                                    policy.policy_id, named)))
        return allowed

    @defer.inlineCallbacks
    def _send(self, hosts, stored, message_id, recipients, sessions):
        """Read the body and offer it to the hosts (None: it is gone); the body is let go
        on return, before the outcome is recorded."""
        if not hosts:        # an enforce policy that none of the MX hosts matches
            return Outcome(error="451 4.7.5 MTA-STS policy of the recipient domain names "
                                 "none of its MX hosts")
        body = yield self.db.read(queue.body, message_id)
        if body is None:
            return None
        job = Job(self.hostname, stored.sender, recipients, body)
        return (yield self._try_hosts(hosts, job, sessions))

    @defer.inlineCallbacks
    def _route(self, domain: str):
        if self.settings.smarthost:
            host, _, port = self.settings.smarthost.rpartition(":")
            return Route([(host.strip("[]"), int(port), host.strip("[]"))])
        found = yield self.resolver.mx(domain)
        if isinstance(found, dns.TempFail):
            return Route(retry_reply=f"451 4.4.3 DNS lookup for {domain} failed ({found.reason})")
        if isinstance(found, dns.NotFound):
            return Route(bounce_reply=f"550 5.1.2 Domain {domain} does not exist")
        if not found.value:
            return Route(bounce_reply=f"556 5.1.10 Domain {domain} accepts no mail (null MX)")
        hosts = []
        for _pref, host in found.value:
            addresses = yield self._addresses(host)
            hosts += [(ip, self.settings.remote_port, host) for ip in addresses]
        if not hosts:
            return Route(retry_reply=f"451 4.4.4 No address for the mail servers of {domain}")
        return Route(hosts)

    @defer.inlineCallbacks
    def _addresses(self, host: str):
        try:
            return [ipaddress.ip_address(host).compressed]
        except ValueError:
            pass
        found = yield self.resolver.addresses(host)
        return found.value if isinstance(found, dns.Found) else []

    @defer.inlineCallbacks
    def _try_hosts(self, hosts, job, sessions):
        outcome = Outcome(error="no mail server reachable")
        for host, port, check in hosts:
            outcome = yield self._talk(host, port, job, check)
            if outcome.judged:                 # a session under an MTA-STS policy
                sessions.append(Session(check.domain, "sts", check.policy_id,
                                        outcome.tls_failure or "",
                                        check.mx_host if outcome.tls_failure else "",
                                        host if outcome.tls_failure else ""))
            if outcome.error is None or not outcome.temporary:
                return outcome
            log.info("delivery to {host}:{port} failed: {error}; trying the next host",
                     host=host, port=port, error=outcome.error)
        return outcome

    @defer.inlineCallbacks
    def _talk(self, host, port, job, check=NO_CHECK):
        factory = ClientFactory(job, self.settings.connect_timeout * 10, self.reactor, check)
        cls = endpoints.TCP6ClientEndpoint if ":" in host else endpoints.TCP4ClientEndpoint
        endpoint = cls(self.reactor, host, port, timeout=self.settings.connect_timeout)
        try:
            yield endpoint.connect(factory)
        except Exception as e:
            return Outcome(error=f"cannot connect to {host}:{port} ({type(e).__name__})")
        return (yield factory.done)

    def _record(self, conn, items, message_id, stored, outcome, now, results, sessions=()):
        """One transaction: every recipient's fate (appended to ``results``: delivered,
        bounced or deferred), the TLS sessions counted, and the bounce if any. Returns it."""
        outbound_tls.count(conn, now.strftime("%Y-%m-%d"), sessions)
        failures, quoted = [], b""
        for item in items:
            code, text = outcome.replies.get(item.recipient, (0, ""))
            reply = f"{code} {text}".strip() if code else (outcome.error or "no reply")
            if 200 <= code < 300:
                queue.delivered(conn, item.id, reply, now)
                results.append("delivered")
                log.info("delivered {queue_id} to <{rcpt}>: {reply}", queue_id=stored.queue_id,
                         rcpt=item.recipient, reply=reply)
                continue
            permanent = code >= 500 or (not code and not outcome.temporary)
            too_old = retry.expired(stored.created_at, now, self.settings.max_queue_age)
            if permanent or too_old:
                if not failures:        # the header, before the last bounce forgets the body
                    quoted = queue.header_start(conn, message_id)
                queue.bounced(conn, item.id, reply, now)
                results.append("bounced")
                failures.append((item.recipient, bounce.status_of(reply, too_old and not permanent),
                                 reply if permanent else f"gave up after {item.attempts + 1} "
                                 f"attempts; last: {reply}"))
                log.info("bounced {queue_id} for <{rcpt}>: {reply}", queue_id=stored.queue_id,
                         rcpt=item.recipient, reply=reply)
            else:
                next_at = retry.next_attempt(now, item.attempts + 1, self.settings.retry_schedule)
                queue.retry(conn, item.id, reply, now, next_at)
                results.append("deferred")
                log.info("deferred {queue_id} for <{rcpt}> until {at}: {reply}",
                         queue_id=stored.queue_id, rcpt=item.recipient, at=next_at.isoformat(),
                         reply=reply)
        if failures:
            return bounce.return_to_sender(conn, self.hostname, stored.sender, failures,
                                           quoted, now, stored.queue_id,
                                           sign=self.signer.signatures)
        return None
