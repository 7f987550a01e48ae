"""Connection admission: how many connections in total, per protocol, per client address
and per account (issue 13, case 4).

Why: with no cap, 400 idle IMAP connections from one host took every file descriptor and a
new SMTP client got an empty reply.  Every listener asks ``ConnectionLimits.admit`` before
it builds a session; a refused client gets its protocol's "too many connections" reply
(SMTP 421, RFC 5321 §3.8; POP3 ``-ERR [SYS/TEMP]``, RFC 3206; IMAP ``* BYE [UNAVAILABLE]``,
RFC 5530) instead of a silent close.  An IPv6 client is counted by its /64, the block one
customer line gets, so rotating addresses inside it gains nothing; an IPv4-mapped address
counts as the IPv4 address.  No protocol may take more than its share of the process total
(80 % unless configured), so a flood of one kind leaves room for the others.  The account
limit is checked at login, when the session knows whose it is (Dovecot's
``mail_max_userip_connections`` does the same per user and address).

Security: counts are in memory and cost one dictionary entry per active client key; an
entry is removed when its last connection closes, so memory follows the open connections.
"""

from __future__ import annotations

import collections
import ipaddress
import resource

from twisted.internet import protocol
from twisted.logger import Logger

log = Logger(namespace="mailstack.limits")

PROTOCOL_SHARE = 0.8      # of the process total, for a protocol with no total of its own
RESERVED_DESCRIPTORS = 128   # listeners, the database, DNS, log files, outbound SMTP


def client_key(host: str) -> str:
    """The unit a per-address limit counts: the IPv4 address, or the IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def descriptor_budget(wanted: int) -> int:
    """Raise the soft descriptor limit towards what ``wanted`` connections need (up to the
    hard limit) and return how many connections fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - RESERVED_DESCRIPTORS))


class Ticket:
    """One admitted connection; ``release`` when it closes (idempotent).  Once logged in it
    is also a live session (``live_sessions``): ``row`` its record, ``kick`` its end.
    ``tap``: how a protocol trace reads it (``traces``), while one does."""

    __slots__ = ("limits", "protocol", "key", "host", "user", "session", "row", "tap")

    def __init__(self, limits, protocol_name: str, key: str, host: str = ""):
        self.limits, self.protocol, self.key, self.host = limits, protocol_name, key, host
        self.user = self.session = self.row = self.tap = None

    def add_user(self, user: str) -> bool:
        """Count this connection against ``user``; False when the account has too many."""
        if self.user == user or self.limits is None:
            return True
        if not self.limits.take_user(self.protocol, user):
            return False
        live = self.limits.live
        if self.user is not None:      # a second login on the same connection
            self.limits.give_back_user(self.protocol, self.user)
            if live is not None:
                live.closed(self)
        self.user = user
        if live is not None:
            live.opened(self, user)
        if self.limits.traces is not None:
            self.limits.traces.logged_in(self, user)
        return True

    def release(self) -> None:
        if self.limits is not None:
            live = self.limits.live
            if self.limits.traces is not None:
                self.limits.traces.closed(self)
            self.limits.give_back(self)
            self.limits = None
            if live is not None:
                live.closed(self)
            self.session = None

    def kick(self) -> None:
        """End the connection (``mailstack kick``): as the session closes it, if it can."""
        session = self.session
        if session is None or session.transport is None:
            return
        close = getattr(session, "close_connection", None)
        if close is not None:
            close()
        else:
            session.transport.loseConnection()


class Uncounted:
    """The ticket of a session built outside a listener (unit tests drive sessions on a
    string transport): nothing to count."""

    user = None

    def add_user(self, user: str) -> bool:
        return True

    def release(self) -> None:
        pass


UNCOUNTED = Uncounted()


class ConnectionLimits:
    """The process-wide counts; one instance, shared by every listener."""

    def __init__(self, config, total: int | None = None, live=None, traces=None):
        self.config, self.live = config, live     # live: who is logged in (live_sessions)
        self.traces = traces                      # protocol traces (traces.Traces)
        self.total = config.connections if total is None else total
        self.open = 0
        self.by_protocol = collections.Counter()
        self.by_client = collections.Counter()     # (protocol, client key)
        self.by_user = collections.Counter()       # (protocol, account)
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in config.trusted_networks]

    def reconfigure(self, config) -> None:
        """New limits (``mailstack reload``); the connections open now stay counted, and
        the process total stays what the descriptor limit allowed at start."""
        self.config = config
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in config.trusted_networks]

    def _limits(self, protocol_name: str):
        return getattr(self.config, protocol_name)

    def protocol_total(self, protocol_name: str) -> int:
        own = self._limits(protocol_name).connections
        return min(own, self.total) if own else max(1, int(self.total * PROTOCOL_SHARE))

    def admit(self, protocol_name: str, host: str) -> Ticket | str:
        """A ticket, or why not: "total", "protocol" or "address"."""
        key = client_key(host)
        if self.open >= self.total:
            return "total"
        if self.by_protocol[protocol_name] >= self.protocol_total(protocol_name):
            return "protocol"
        if self.by_client[protocol_name, key] >= self._limits(protocol_name).per_ip \
                and not self._trusted(host):
            return "address"
        self.open += 1
        self.by_protocol[protocol_name] += 1
        self.by_client[protocol_name, key] += 1
        return Ticket(self, protocol_name, key, host)

    def _trusted(self, host: str) -> bool:
        if not self.trusted:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted)

    def take_user(self, protocol_name: str, user: str) -> bool:
        if self.by_user[protocol_name, user] >= self._limits(protocol_name).per_user:
            return False
        self.by_user[protocol_name, user] += 1
        return True

    def give_back(self, ticket: Ticket) -> None:
        self.open -= 1
        _decrement(self.by_protocol, ticket.protocol)
        _decrement(self.by_client, (ticket.protocol, ticket.key))
        if ticket.user is not None:
            self.give_back_user(ticket.protocol, ticket.user)

    def give_back_user(self, protocol_name: str, user: str) -> None:
        _decrement(self.by_user, (protocol_name, user))


def _decrement(counter, key) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


class Refusal(protocol.Protocol):
    """Says the protocol's "too many connections" and closes; it reads nothing."""

    def __init__(self, reply: bytes):
        self.reply = reply

    def connectionMade(self):
        self.transport.write(self.reply)
        self.transport.loseConnection()


class AdmittingFactory(protocol.ServerFactory):
    """A server factory whose sessions are admitted by the limits first.

    Subclasses set ``listener`` (its ``protocol`` names the limits), ``limits`` and
    ``name``, and implement ``too_many(reason) -> bytes``; the session they build gets
    ``ticket`` and must release it in ``connectionLost``.
    """

    noisy = False   # ListenerService logs the listening line once
    limits: ConnectionLimits

    def buildProtocol(self, addr):
        ticket = self.limits.admit(self.listener.protocol, addr.host)
        if isinstance(ticket, str):
            log.info("refused {host} on {name}: too many connections ({reason})",
                     host=addr.host, name=self.name, reason=ticket)
            return Refusal(self.too_many(ticket))
        session = self.build_session(addr)
        session.ticket, ticket.session = ticket, session
        if self.limits.traces is not None:
            self.limits.traces.admitted(ticket, session)
        return session

    def build_session(self, addr):
        return protocol.ServerFactory.buildProtocol(self, addr)

    def too_many(self, reason: str) -> bytes:
        raise NotImplementedError
