"""Protocol traces on this node: ``mailstack trace ADDRESS|IP`` (issue 15, item 16).

Why: "why can't she log in?" is answered fastest by what her client said and what we
replied (Dovecot's rawlog).  The command writes a row (``store/traces.py``); every node
polls the rows every ``POLL_SECONDS`` and traces the matching connections of every
protocol itself, so a trace works whichever node the customer reaches, and ends by
itself when its time is up (the injected clock decides, at each poll and at each new
connection), or at ``mailstack trace --off``.

What is traced: a connection from a traced IP from its first byte (the banner included);
and, while an address is traced, every new connection is read from its first byte into a
small ring of ``BEFORE_LOGIN`` records, so that when it names the address at login (a
failed login too) its file starts with what led there.  A login as anyone else ends the
watching of that connection.  A connection opened before the trace began is not traced.

How: admission (``connection_limits``) hands each new session to ``admitted`` and each
login to ``logged_in``; only then, and only while a trace is active, is the session's
``dataReceived`` and its transport's ``write``/``writeSequence`` wrapped by a ``Tap``
(an instance attribute over the class's method, removed again when the trace ends): an
untraced connection costs one test of two dictionaries at connect and at login, and
nothing per byte.  The dialects (``trace_masking``, ``trace_imap``) decide what a record
may show.

Security: a trace names addresses and commands, so its directory is 0700 and its files
0600, under ``state_dir/traces/<target>/`` only; passwords, SASL responses and message
content are masked before a record exists (``trace_masking``).  Memory is bounded: the
ring per watched connection, a few kilobytes of pending records per traced one (written
at each poll or sooner, never fsync'd; ``trace_files``), a file stops at 16 MB.
"""

from __future__ import annotations

import collections
import ipaddress
import os
from pathlib import Path

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.protocols.trace_files import TraceFile
from mailstack.protocols.trace_imap import IMAPDialect
from mailstack.protocols.trace_masking import POP3Dialect, SMTPDialect
from mailstack.repeating import Repeating
from mailstack.store import traces as stored
from mailstack.store.errors import StoreUnavailable

log = Logger(namespace="mailstack.traces")

DIALECTS = {"smtp": SMTPDialect, "submission": SMTPDialect, "pop3": POP3Dialect,
            "imap": IMAPDialect}


class Traces(Repeating):
    """The traces active now, as last read from the store, and the connections tapped."""

    POLL_SECONDS = 2.0
    BEFORE_LOGIN = 20

    def __init__(self, db, clock, reactor, directory: Path, node: str):
        self.db, self.clock, self.reactor = db, clock, reactor
        self.directory, self.node = Path(directory), stored.directory_name(node)
        self.addresses: dict[str, object] = {}     # address -> until
        self.networks: dict[str, tuple] = {}       # target -> (network, until)
        self.taps: set[Tap] = set()
        self.timer, self.interval, self.tick_at_start = reactor, self.POLL_SECONDS, True

    # --- admission (connection_limits) -------------------------------------------------
    def admitted(self, ticket, session) -> None:
        if not (self.addresses or self.networks) or ticket.protocol not in DIALECTS:
            return
        target = self._ip_target(ticket.host)
        if target is None and not self._addresses_now():
            return
        tap = Tap(self, ticket, session)
        ticket.tap = tap
        self.taps.add(tap)
        if target is not None:
            tap.trace(target)
        tap.attach()

    def logged_in(self, ticket, user: str) -> None:
        tap = ticket.tap
        if tap is None or tap.target is not None:
            return
        target = self.traced_address(user)
        if target is None:
            self._forget(tap)             # someone else: watching it is over
        else:
            tap.trace(target)

    def closed(self, ticket) -> None:
        tap = ticket.tap
        if tap is not None:
            tap.end("connection closed")
            self._forget(tap)

    def named(self, tap, name: str) -> None:
        """The client of a watched connection names ``name`` at login."""
        target = self.traced_address(name)
        if target is not None and tap.target is None:
            tap.trace(target)

    def _forget(self, tap) -> None:
        tap.detach()
        self.taps.discard(tap)
        tap.ticket.tap = None

    # --- what is traced now ------------------------------------------------------------
    def traced_address(self, name: str) -> str | None:
        try:
            address = stored.normalise_target(name)
        except ValueError:
            return None
        until = self.addresses.get(address)
        return address if until is not None and until > clocks.now(self.clock) else None

    def _addresses_now(self) -> bool:
        now = clocks.now(self.clock)
        return any(until > now for until in self.addresses.values())

    def _ip_target(self, host: str) -> str | None:
        if not self.networks:
            return None
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None
        ip = getattr(ip, "ipv4_mapped", None) or ip
        now = clocks.now(self.clock)
        for target, (network, until) in self.networks.items():
            if ip.version == network.version and ip in network and until > now:
                return target
        return None

    def _active(self, target: str, now) -> bool:
        until = self.addresses.get(target) or self.networks.get(target, (None, None))[1]
        return until is not None and until > now

    # --- the poll ----------------------------------------------------------------------
    def tick(self):
        return self.poll()

    def stopService(self):
        super().stopService()
        for tap in list(self.taps):
            tap.end("server stopping")
            self._forget(tap)

    @defer.inlineCallbacks
    def poll(self):
        try:
            rows = yield self.db.read(stored.active, clocks.now(self.clock))
        except StoreUnavailable:
            rows = None                     # keep what we knew; expiry still applies
        if rows is not None:
            self._load(rows)
        self.expire()

    def _load(self, rows) -> None:
        before = set(self.addresses) | set(self.networks)
        started = {row.target for row in rows} - before
        for target in sorted(before - {row.target for row in rows}):
            log.info("trace of {target} ended", target=target)
        self.addresses, self.networks = {}, {}
        for row in rows:
            network = stored.network_of(row.target)
            if network is None:
                self.addresses[row.target] = row.until
            else:
                self.networks[row.target] = (network, row.until)
        for target in sorted(started):
            log.info("tracing {target} until {until}", target=target,
                     until=(self.addresses.get(target)
                            or self.networks.get(target, (None, None))[1]).isoformat())

    def expire(self) -> None:
        """End what is no longer traced (its time is up, or ``--off``); write the rest."""
        now = clocks.now(self.clock)
        watching = any(until > now for until in self.addresses.values())
        for tap in list(self.taps):
            if tap.target is not None and not self._active(tap.target, now):
                tap.end("trace ended")
                self._forget(tap)
            elif tap.target is None and not watching:
                self._forget(tap)
            else:
                tap.flush()


class Tap:
    """One connection read for a trace: watched (records in a ring) until it is traced
    (records in its file)."""

    def __init__(self, traces: Traces, ticket, session):
        self.traces, self.ticket, self.session = traces, ticket, session
        self.target = None
        self.before = collections.deque(maxlen=traces.BEFORE_LOGIN)
        self.file = None
        self.dialect = DIALECTS[ticket.protocol](self.record, self._named)
        self._transport = None

    def _named(self, name: str) -> None:
        if self.target is None:
            self.traces.named(self, name)

    # --- the wrapping ------------------------------------------------------------------
    def attach(self) -> None:
        session = self.session
        # Twisted calls ``protocol.dataReceived``; an instance attribute shadows the
        # class's method for this connection only, and is deleted in ``detach``.
        receive = session.dataReceived

        def traced_receive(data):
            self._read(self.dialect.client, data)
            receive(data)

        session.dataReceived = traced_receive
        connect = session.makeConnection       # at admission: not connected yet

        def traced_connect(transport):       # the banner is written in connectionMade
            del session.makeConnection
            self._wrap(transport)
            connect(transport)

        session.makeConnection = traced_connect

    def _wrap(self, transport) -> None:
        write, write_sequence = transport.write, transport.writeSequence

        def traced_write(data):
            self._read(self.dialect.server, data)
            write(data)

        def traced_sequence(pieces):
            pieces = list(pieces)
            for piece in pieces:
                self._read(self.dialect.server, piece)
            write_sequence(pieces)

        transport.write, transport.writeSequence = traced_write, traced_sequence
        self._transport = transport

    def detach(self) -> None:
        vars(self.session).pop("dataReceived", None)
        vars(self.session).pop("makeConnection", None)
        if self._transport is not None:
            vars(self._transport).pop("write", None)
            vars(self._transport).pop("writeSequence", None)
            self._transport = None
        self.before.clear()

    def _read(self, side, data: bytes) -> None:
        try:
            side(bytes(data))
        except Exception:
            # A fault of the trace's own reading must not touch the connection.
            log.failure("trace reading failed; this connection is no longer traced")
            self.end("trace failed")
            self.traces._forget(self)

    # --- the records -------------------------------------------------------------------
    def record(self, direction: str, text: str) -> None:
        stamp = clocks.now(self.traces.clock).isoformat(timespec="milliseconds")
        line = f"{stamp[:23]}Z {direction}: {text}\n"
        if self.file is None:
            self.before.append(line)
        else:
            self.file.add(line)

    def trace(self, target: str) -> None:
        """From now on into a file of ``target``'s, with the records kept so far."""
        self.target = target
        self.file = TraceFile(self._path(target))
        host = self.ticket.host
        self.file.add(f"# mailstack trace of {target}: {self.ticket.protocol} connection "
                      f"from {host} on {self.traces.node}\n")
        if self.before:
            self.file.add(f"# the last {len(self.before)} records before the login named "
                          f"{target}:\n")
        for line in self.before:
            self.file.add(line)
        self.before.clear()

    def _path(self, target: str) -> Path:
        now = clocks.now(self.traces.clock)
        session_id = getattr(self.session, "session_id", None) or os.urandom(5).hex()
        name = (f"{now:%Y%m%d-%H%M%S}-{self.traces.node}-{self.ticket.protocol}-"
                f"{stored.directory_name(session_id)}.log")
        return self.traces.directory / stored.directory_name(target) / name

    def flush(self) -> None:
        if self.file is not None:
            self.file.flush()

    def end(self, why: str) -> None:
        if self.file is not None:
            self.file.add(f"# {why}\n")
            self.file.close()
            self.file = None
