"""Which MTA-STS policy applies to a destination domain: discovered, fetched and cached.

Why: RFC 8461 §5.1's rules decide between DNS, HTTPS and the cache, and an attacker who
can block one of them must not be able to switch a policy off.  So:

- the ``_mta-sts.<domain>`` TXT record is read through our resolver (cached for its TTL);
- its id equal to the cached policy's, and that policy unexpired: the cached policy;
- a new id, or nothing cached: the policy is fetched (``sts_fetch.py``), parsed
  (``mta_sts.py``) and cached in the database for its max_age (``store/outbound_tls.py``);
- no record, a DNS failure, or a failed fetch: the cached policy while it is unexpired,
  else none (and the failure is reported through TLS-RPT);
- a failed fetch is not tried again for FETCH_BACKOFF seconds.

What the queue reads per delivery is kept in memory too (MEMORY_SECONDS), so a domain
without MTA-STS costs a cached TXT answer and a dict read, no query of the store.

Standards: RFC 8461 §3.1, §3.3, §5.1 (policy discovery and the cache), §10.2 (a fetch
failure must not downgrade: the cached policy wins).
Security: a policy is only taken from an HTTPS fetch whose certificate is valid for
``mta-sts.<domain>`` (``sts_fetch.py``), never from DNS alone; an unexpired cached
policy survives a missing record or a blocked fetch.  Not guarded (as RFC 8461 §10
says): the first contact, before any policy is cached, can be downgraded by an
attacker who blocks the TXT lookup or the fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks, dns, mta_sts
from mailstack.delivery import sts_fetch
from mailstack.store import outbound_tls
from mailstack.store.outbound_tls import CachedPolicy

log = Logger(namespace="mailstack.delivery")
MEMORY_SECONDS = 300          # a policy read from the store is kept in memory this long
MEMORY_ENTRIES = 20000        # domains kept in memory; emptied when full
FETCH_BACKOFF = 300           # a failed fetch is not repeated before this


@dataclass(frozen=True)
class Applied:
    """The policy in force for a domain (None: none, or mode ``none``), and what went
    wrong finding a fresh one (for TLS-RPT)."""

    policy: CachedPolicy | None
    failure: sts_fetch.FetchFailed | None = None


class StsPolicies:
    def __init__(self, db, clock, reactor, resolver: dns.Resolver, settings, anchors):
        """``settings``: ``[mta_sts]``; ``anchors``: the CAs policy hosts must chain to."""
        self.db, self.clock, self.reactor, self.resolver = db, clock, reactor, resolver
        self.settings, self.anchors = settings, anchors
        self._memory: dict[str, tuple[float, CachedPolicy | None]] = {}
        self._failed: dict[str, tuple[float, str, sts_fetch.FetchFailed]] = {}

    @defer.inlineCallbacks
    def for_domain(self, domain: str):
        """An ``Applied`` for ``domain`` (never fails: trouble means no fresh policy)."""
        if not self.settings.enabled:
            return Applied(None)
        record_id = yield self._record_id(domain)
        cached = yield self._cached(domain)
        if record_id is None or (cached is not None and cached.policy_id == record_id):
            return Applied(_in_force(cached))
        fetched = yield self._fetch(domain, record_id)
        if isinstance(fetched, sts_fetch.FetchFailed):
            return Applied(_in_force(cached), fetched)
        return Applied(_in_force(fetched))

    @defer.inlineCallbacks
    def _record_id(self, domain: str):
        found = yield self.resolver.txt(f"_mta-sts.{domain}")
        if not isinstance(found, dns.Found):
            return None
        try:
            return mta_sts.only_record_id(found.value)
        except mta_sts.StsSyntaxError:
            return None

    @defer.inlineCallbacks
    def _cached(self, domain: str):
        """The unexpired cached policy, from memory or the store."""
        seconds = self.clock.seconds()
        kept = self._memory.get(domain)
        if kept is None or kept[0] <= seconds:
            found = yield self.db.read(outbound_tls.cached_policy, domain)
            kept = (seconds + MEMORY_SECONDS, found)
            if len(self._memory) >= MEMORY_ENTRIES:
                self._memory.clear()
            self._memory[domain] = kept
        policy = kept[1]
        if policy is None or policy.expires_at <= clocks.to_datetime(seconds):
            return None
        return policy

    @defer.inlineCallbacks
    def _fetch(self, domain: str, record_id: str):
        seconds = self.clock.seconds()
        failed = self._failed.get(domain)
        if failed is not None and failed[0] > seconds and failed[1] == record_id:
            return failed[2]
        text = yield sts_fetch.fetch(self.reactor, self.resolver, domain, self.anchors,
                                     port=self.settings.https_port,
                                     timeout=self.settings.fetch_timeout)
        if isinstance(text, str):
            try:
                policy = mta_sts.parse_policy(text)
            except mta_sts.StsSyntaxError as e:
                text = sts_fetch.FetchFailed("sts-policy-invalid", f"mta-sts.{domain}: {e}")
        if isinstance(text, sts_fetch.FetchFailed):
            log.info("MTA-STS policy of {domain} not fetched: {reason}", domain=domain,
                     reason=text.reason)
            if len(self._failed) >= MEMORY_ENTRIES:
                self._failed.clear()
            self._failed[domain] = (seconds + FETCH_BACKOFF, record_id, text)
            return text
        now = clocks.to_datetime(seconds)
        cached = CachedPolicy(domain, record_id, policy.mode, policy.mx, policy.max_age, text,
                              now, now + timedelta(seconds=policy.max_age))
        yield self.db.run(outbound_tls.save_policy, cached)
        self._memory[domain] = (seconds + MEMORY_SECONDS, cached)
        self._failed.pop(domain, None)
        log.info("MTA-STS policy of {domain}: {mode}, id {id}, for {age} s", domain=domain,
                 mode=policy.mode, id=record_id, age=policy.max_age)
        return cached


def _in_force(policy: CachedPolicy | None) -> CachedPolicy | None:
    """A policy of mode ``none`` asks nothing (RFC 8461 §5)."""
    return policy if policy is not None and policy.mode != "none" else None


def allows(policy: CachedPolicy, host: str) -> bool:
    return mta_sts.Policy(policy.mode, policy.max_age, policy.mx).allows(host)
