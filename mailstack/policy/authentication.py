"""Message authentication on port 25: SPF, DKIM, ARC and DMARC run once per message.

Why one runner for four checks: they share one reading of the message, one DNS bridge
and one worker thread, and DMARC needs the results of SPF and DKIM.  Each check is its
own module (``spf_check``, ``dkim_check``, ``arc_check``, ``dmarc``); this one runs them
in order in the ``authentication`` worker pool (the libraries are synchronous: DNS waits
and RSA/Ed25519 arithmetic must not stop the reactor), removes Authentication-Results
fields that claim our authserv-id (RFC 8601 §5: in the spool, before anything is stored)
and returns a ``Stamp``: the results, our header, and whether the message goes to Junk.
The decision on a ``p=reject`` is the data table's (``dmarc.Enforced``), so the rejection
log, the whitelist and the trusted forwarders apply as for every other refusal.

Only port 25 asks (``mx.py``); submission never does: its senders are our customers,
and their mail is signed, not verified.  A message from a client that logged in
(``[smtp] mx_relay``) is not verified either.

Standards: RFC 7208, RFC 6376, RFC 8463, RFC 8617, RFC 7489, RFC 8601.
Security: the checks run on the message as received; a failure in a library is logged and
the message accepted unstamped (a bug must not bounce mail); a DNS failure is never a 5xx.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from twisted.logger import Logger

from mailstack.policy import arc_check, auth_results, dkim_check, dmarc, spf_check
from mailstack.policy.dns_bridge import BlockingDNS

log = Logger(namespace="mailstack.policy.authentication")
HEAD_LIMIT = 256 * 1024     # octets read of a message too large to verify: its header


@dataclass(frozen=True)
class Stamp:
    """What authentication found about one message."""

    mail_from: str
    spf: spf_check.SPFResult            # the MAIL FROM identity
    spf_helo: spf_check.SPFResult
    dkim: tuple                         # dkim_check.DKIMResult, one per signature
    arc: arc_check.ARCResult
    dmarc: dmarc.DMARCResult
    header: bytes = b""                 # our Authentication-Results field, CRLF-ended
    stripped: int = 0                   # forged fields with our authserv-id removed

    @property
    def temperror(self) -> bool:
        """A DNS failure in what DMARC reads: its verdict cannot be trusted either way."""
        return (self.spf.result == "temperror" or self.dmarc.result == "temperror"
                or any(d.result == "temperror" for d in self.dkim))

    @property
    def rejected(self) -> bool:
        """DMARC ``p=reject`` failed (the message was let through only as an exception:
        it is stored here, never forwarded to another provider)."""
        return self.dmarc.result == "fail" and self.dmarc.applied == "reject"

    @property
    def junk(self) -> bool:
        """DMARC ``p=quarantine`` failed: delivered to the recipients' Junk folder."""
        return (self.dmarc.result == "fail" and self.dmarc.applied == "quarantine"
                and not self.temperror)


class Authenticator:
    """Verifies port-25 messages in its own small pool; ``verify`` fires with a Stamp."""

    def __init__(self, resolver, reactor, pool, *, authserv_id: str,
                 public_suffix_list: str = "", max_message_size: int = 0):
        self.resolver, self.reactor, self.pool = resolver, reactor, pool
        self.authserv_id = authserv_id
        self.max_size = max_message_size     # 0: every message; else larger ones: SPF only
        self._psl_path = public_suffix_list
        self._orgs = None
        self._orgs_lock = threading.Lock()

    def verify(self, request):
        """The Stamp for the message in ``request.message`` (a spool)."""
        return self.pool.run(self.stamp, request.message, request.client_ip,
                             request.sender or "", request.helo or "")

    def stamp(self, spool, client_ip: str, sender: str, helo: str) -> Stamp:
        """In the worker thread: every check, then our header; the spool loses forged
        Authentication-Results fields."""
        bridge = BlockingDNS(self.resolver, self.reactor)
        spf, spf_helo = spf_check.check(bridge, client_ip, sender, helo)
        if self.max_size and spool.size > self.max_size:
            signatures, arc, verdict = _not_checked(spool.size)
            stripped = spool.remove_fields(spool.head(HEAD_LIMIT), self._without_forged)
        else:
            message = spool.read()
            signatures = tuple(dkim_check.check(bridge, message))
            arc = arc_check.check(bridge, message)
            verdict = dmarc.evaluate(bridge, message, spf, signatures, self.organizational())
            stripped = spool.remove_fields(message, self._without_forged)
        stamp = Stamp(sender, spf, spf_helo, signatures, arc, verdict, stripped=stripped)
        return replace(stamp, header=auth_results.header(self.authserv_id, stamp))

    def _without_forged(self, message: bytes) -> tuple[bytes, int]:
        """``message`` without Authentication-Results fields claiming our authserv-id."""
        return auth_results.strip_ours(message, self.authserv_id)

    def organizational(self) -> dmarc.OrganizationalDomains:
        """The public suffix list, loaded by the first message that needs it."""
        with self._orgs_lock:
            if self._orgs is None:
                self._orgs = dmarc.OrganizationalDomains(self._psl_path)
            return self._orgs


def delivered(stamp: Stamp, authserv_id: str) -> Stamp:
    """The stamp of a message that is being delivered: the DMARC disposition in its
    header is what was done (RFC 7489 §7.2.1.1 ``disposition``), not what the domain
    asked -- ``none`` for a ``p=reject`` failure let through (a whitelisted client, a
    trusted forwarder, a DNS failure) and for a quarantine not applied (a DNS failure)."""
    done = "quarantine" if stamp.junk else "none"
    if stamp.dmarc.result != "fail" or stamp.dmarc.applied == done:
        return stamp
    settled = replace(stamp, dmarc=replace(stamp.dmarc, applied=done))
    return replace(settled, header=auth_results.header(authserv_id, settled))


def _not_checked(size: int):
    """The results of a message over ``[authentication] max_message_size``: its
    signatures are not verified (dkimpy needs the whole message in memory, several
    copies of it), so DMARC is not evaluated and no policy applies."""
    reason = f"message of {size} octets not verified"
    return ((dkim_check.DKIMResult("policy", reason=reason),), arc_check.ARCResult("none"),
            dmarc.DMARCResult("none", reason=reason))
