"""POP3 on 110 (with STLS) and 995 (implicit TLS).

Why not ``twisted.mail.pop3.POP3``: measured against Twisted 26.10 (TWISTED-NOTES) it answers
QUIT before the deletions are committed, answers pipelined commands before an asynchronous
PASS has finished, drops the connection on a malformed argument (``DELE abc``), keeps
deleted messages in LIST/UIDL, dot-stuffs per 16 KiB chunk (a crafted message ends RETR
early), advertises joke capabilities and has no STLS, RESP-CODES or AUTH PLAIN.  POP3 is
small, so this is a replacement on our in-order line receiver, like the ESMTP session.

Standards: RFC 1939, RFC 2449 (CAPA, RESP-CODES), RFC 2595 (STLS), RFC 3206
(AUTH-RESP-CODE, [IN-USE], [SYS/TEMP]), RFC 5034 (AUTH PLAIN).  No APOP: it needs the
password stored in plaintext-equivalent form.
Security: after STLS, pipelined input is dropped and the session starts over; USER/PASS
are refused without TLS once the cutover has passed; failures are throttled by the realm.
"""

from __future__ import annotations

import base64
import binascii
from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport
from twisted.protocols.policies import TimeoutMixin
from zope.interface import Interface

from mailstack import replies
from mailstack.dotstuff import DotStuffer
from mailstack.logs import SessionLog, new_session_id
from mailstack.protocols import starttls
from mailstack.protocols.connection_limits import UNCOUNTED, AdmittingFactory
from mailstack.protocols.deadlines import Deadline
from mailstack.protocols.lines import OVERLONG, InOrderLineReceiver
from mailstack.protocols.pop3_lease import MaildropLease
from mailstack.protocols.sasl_plain import ForeignAuthzid, parse_plain
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.replies import PopReply
from mailstack.store import body_ranges, maildrop
from mailstack.store.body_ranges import RANGE, STREAM_OVER
from mailstack.store.errors import Conflict, StoreUnavailable

CHUNK = 64 * 1024
READ_AHEAD_BYTES = 1024 * 1024


class IPOP3User(Interface):
    """The avatar of a POP3 login: the ``AccountRef``."""


class POP3Session(InOrderLineReceiver, TimeoutMixin):
    MAX_LENGTH = 1024
    ticket = UNCOUNTED        # the listener's admission (connection_limits.py)

    def connectionMade(self):
        self.parts = self.factory.parts
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.pop3", self.session_id, self.client_ip)
        self.callLater = self.parts.clock.callLater
        self.setTimeout(self.parts.config.pop3.idle_timeout)
        # Logged in within login_timeout, however busy the client keeps us (issue 13).
        self.login_deadline = Deadline(self.parts.clock, self.parts.config.pop3.login_timeout,
                                       self._login_too_late)
        self.start_queue()
        self._reset()
        self.log.info("connect {name} tls={tls}", name=self.factory.name, tls=self.tls)
        self.ok("mailstack POP3 server ready")

    def _reset(self):
        self.user = None          # from USER, until PASS
        self.account = None       # AccountRef once logged in
        self.drop = None          # [Entry] snapshot
        self.deleted = set()      # 1-based numbers
        self.continuation = None
        self.quitting = False
        # A shutdown that frees this node's locks ends the session (nothing deleted).
        self.lease = MaildropLease(self.parts, self.session_id, self.log,
                                   revoked=self.transport.loseConnection)
        self._read_ahead = {}

    def reset_after_tls(self):
        """RFC 2595 §4: forget everything learned before the handshake."""
        self.clear_queue()
        self._reset()

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        self.login_deadline.cancel()
        self.ticket.release()
        self.stopProducing()          # a RETR waiting for the client to read ends
        if not self.quitting:
            # No QUIT: RFC 1939 §6 says nothing is deleted; just free the maildrop.
            self._release()
        self.log.info("disconnect")

    def _release(self):
        self.account = None
        self.lease.release()

    @property
    def tls(self) -> bool:
        return ISSLTransport.providedBy(self.transport)

    # --- replies ------------------------------------------------------------------------

    def ok(self, text: str = "") -> None:
        self.transport.write(f"+OK {text}".rstrip().encode("utf-8") + b"\r\n")

    def err(self, reply: PopReply) -> None:
        self.transport.write(reply.pop3() + b"\r\n")

    def multiline(self, header: str, lines) -> None:
        body = "".join(f"{line}\r\n" for line in lines)
        self.transport.write(f"+OK {header}\r\n{body}.\r\n".encode("utf-8"))

    def command_failed(self, failure):
        if failure.check(StoreUnavailable):
            self.log.warn("store unavailable")
        else:
            self.log.failure("command failed", failure)
        self.err(replies.POP_SYS_TEMP)

    def timeoutConnection(self):
        self.log.info("idle timeout")
        self.err(replies.POP_TIMEOUT)
        self.close_connection()

    def _login_too_late(self):
        if self.account is None and not self.transport.disconnecting:
            self.log.info("no login within {s} s", s=self.parts.config.pop3.login_timeout)
            self.err(replies.POP_LOGIN_TIMEOUT)
            self.close_connection()

    # --- dispatch ------------------------------------------------------------------------

    def process_line(self, line):
        if line is OVERLONG:
            self.continuation = None
            return self.err(replies.POP_LINE_TOO_LONG)
        if self.continuation is not None:
            respond, self.continuation = self.continuation, None
            return respond(line)
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            return self.err(replies.POP_NOT_UTF8)
        verb, _, argument = text.strip().partition(" ")
        state = "trans" if self.account is not None else "auth"
        renewed = self.lease.renew()    # any command: a long STAT/NOOP session keeps its lock
        if renewed is not None:
            return renewed.addCallback(lambda _: self._dispatch(state, verb, argument))
        return self._dispatch(state, verb, argument)

    def _dispatch(self, state, verb, argument):
        handler = getattr(self, f"{state}_{verb.upper()}", None) if verb.isalpha() else None
        if handler is None:
            other = "auth" if state == "trans" else "trans"
            if verb.isalpha() and hasattr(self, f"{other}_{verb.upper()}"):
                return self.err(replies.POP_NOT_NOW)
            self.log.info("unknown command {verb!r}", verb=verb[:20])
            return self.err(replies.POP_BAD_COMMAND)
        return handler(argument.strip())

    # --- both states ----------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                "EXPIRE NEVER", "IMPLEMENTATION mailstack"]
        if self.account is None:
            if self.password_allowed():
                caps += ["USER", "SASL PLAIN"]
            if self.stls_offered():
                caps.append("STLS")
        return caps

    def auth_CAPA(self, argument):
        self.multiline("Capability list follows", self.capabilities())

    trans_CAPA = auth_CAPA

    def auth_NOOP(self, argument):
        self.ok()

    trans_NOOP = auth_NOOP

    def auth_QUIT(self, argument):
        self.ok("mailstack POP3 server signing off")
        self.close_connection()

    # --- AUTHORIZATION ------------------------------------------------------------------

    def password_allowed(self) -> bool:
        return self.tls or self.parts.tls_requirement.allows_plaintext()

    def stls_offered(self) -> bool:
        return (self.factory.listener.tls == "starttls" and not self.tls
                and self.parts.tls_options is not None)

    def auth_STLS(self, argument):
        if self.tls:
            return self.err(replies.POP_TLS_ALREADY)
        if not self.stls_offered():
            return self.err(replies.POP_BAD_COMMAND)
        self.ok("Begin TLS negotiation")
        self.log.info("STLS")
        starttls.begin_tls(self, self.parts.tls_options)

    def auth_APOP(self, argument):
        self.err(replies.POP_NO_APOP)

    def auth_USER(self, argument):
        if not self.password_allowed():
            self.log.info("USER refused: TLS required")
            return self.err(replies.POP_TLS_REQUIRED)
        if not argument:
            return self.err(replies.POP_BAD_ARGUMENT)
        self.user = argument
        self.ok("send PASS")

    def auth_PASS(self, argument):
        if not self.password_allowed():
            return self.err(replies.POP_TLS_REQUIRED)
        if self.user is None:
            return self.err(replies.POP_NEED_USER)
        user, self.user = self.user, None
        return self._login(user.encode("utf-8"), argument.encode("utf-8"), "USER")

    def auth_AUTH(self, argument):
        if not argument:
            return self.multiline("SASL mechanisms follow",
                                  ["PLAIN"] if self.password_allowed() else [])
        mechanism, _, initial = argument.partition(" ")
        if mechanism.upper() != "PLAIN":
            return self.err(replies.POP_UNKNOWN_MECHANISM)
        if not self.password_allowed():
            return self.err(replies.POP_TLS_REQUIRED)
        if initial and initial != "=":
            return self._sasl_plain(initial.encode("ascii", "replace"))
        self.transport.write(b"+ \r\n")
        self.continuation = self._sasl_plain

    def _sasl_plain(self, response: bytes):
        if response.strip() == b"*":
            return self.err(replies.POP_AUTH_CANCELLED)
        try:
            user, password = parse_plain(base64.b64decode(response.strip(), validate=True))
        except ForeignAuthzid:
            return self.err(replies.POP_AUTH_FAILED)
        except (binascii.Error, ValueError):
            return self.err(replies.POP_BAD_BASE64)
        return self._login(user, password, "PLAIN")

    @defer.inlineCallbacks
    def _login(self, user: bytes, password: bytes, mechanism: str):
        credentials = SessionCredentials(user, password, protocol="pop3", client_ip=self.client_ip,
                                         tls=self.tls, mechanism=mechanism,
                                         port=self.transport.getHost().port)
        try:
            _iface, account, _logout = yield self.parts.portal.login(credentials, None, IPOP3User)
        except UnauthorizedLogin:
            return self.err(replies.POP_AUTH_FAILED)
        except TemporaryAuthFailure:
            return self.err(replies.POP_SYS_TEMP)
        if not self.ticket.add_user(account.address):
            self.log.info("too many connections for {user}", user=account.address)
            return self.err(replies.POP_TOO_MANY_FOR_ACCOUNT)
        try:
            drop = yield self.lease.take(account.id)
        except (maildrop.InUse, Conflict):
            self.log.info("maildrop of {user} in use", user=account.address)
            return self.err(replies.POP_IN_USE)
        if self.transport.disconnecting:
            self.lease.release()
            return None
        self.account, self.drop = account, drop
        self.login_deadline.cancel()
        self.log.info("maildrop of {user} open: {n} messages", user=account.address, n=len(drop))
        self.ok(f"{account.address} has {len(drop)} messages")

    # --- TRANSACTION ------------------------------------------------------------------------

    def _message(self, argument):
        """(number, Entry) for a message argument, or None after sending the -ERR."""
        if not argument.isdigit():
            self.err(replies.POP_BAD_ARGUMENT)
            return None
        number = int(argument)
        if not 1 <= number <= len(self.drop):
            self.err(replies.POP_NO_SUCH_MESSAGE)
            return None
        if number in self.deleted:
            self.err(replies.POP_DELETED)
            return None
        return number, self.drop[number - 1]

    def _live(self):
        return [(n, e) for n, e in enumerate(self.drop, 1) if n not in self.deleted]

    def trans_STAT(self, argument):
        live = self._live()
        self.ok(f"{len(live)} {sum(e.size for _, e in live)}")

    def trans_LIST(self, argument):
        if argument:
            found = self._message(argument)
            return found and self.ok(f"{found[0]} {found[1].size}")
        live = self._live()
        self.multiline(f"{len(live)} messages", [f"{n} {e.size}" for n, e in live])

    def trans_UIDL(self, argument):
        if argument:
            found = self._message(argument)
            return found and self.ok(f"{found[0]} {found[1].guid}")
        self.multiline("unique-id listing follows", [f"{n} {e.guid}" for n, e in self._live()])

    def trans_DELE(self, argument):
        found = self._message(argument)
        if found:
            self.deleted.add(found[0])
            self.ok(f"message {found[0]} deleted")

    def trans_RSET(self, argument):
        self.deleted.clear()
        self.trans_STAT("")

    def trans_RETR(self, argument):
        found = self._message(argument)
        return found and self._send(found[1], None)

    def trans_TOP(self, argument):
        number, _, lines = argument.partition(" ")
        if not lines.strip().isdigit():
            return self.err(replies.POP_BAD_ARGUMENT)
        found = self._message(number)
        return found and self._send(found[1], int(lines))

    @defer.inlineCallbacks
    def _send(self, entry, top_lines):
        if top_lines is None and entry.size > STREAM_OVER:
            return (yield self._send_by_ranges(entry))
        if entry.id not in self._read_ahead:
            # Clients RETR 1..n in a row: one query fetches the next ~1 MB of messages.
            self._read_ahead = yield self.parts.db.read(
                maildrop.bodies, self.account.id, self._next_ids(entry))
        message = self._read_ahead.pop(entry.id, None)
        if message is None:
            return self.err(replies.POP_NO_SUCH_MESSAGE)
        if top_lines is not None:
            message = _top(message, top_lines)
        self.ok(f"{len(message)} octets")
        stuffer = DotStuffer()
        for start in range(0, len(message), CHUNK):
            self.transport.write(stuffer.feed(message[start:start + CHUNK]))
            yield self.writable()     # a 25 MB message is not copied whole into the transport
            if self.transport.disconnecting:
                return None
        self.transport.write(stuffer.finish())

    @defer.inlineCallbacks
    def _send_by_ranges(self, entry):
        """RETR of a large message: read and sent a RANGE at a time as the client reads,
        never whole (issue 13).  If it vanishes meanwhile (expunged over IMAP), the
        multi-line reply cannot be ended honestly: the connection is closed."""
        stuffer, started = DotStuffer(), False
        for start in range(0, entry.size, RANGE):
            end = min(entry.size, start + RANGE)
            octets = yield self.parts.db.read(body_ranges.read_range, entry.id, start, end)
            if octets is None or len(octets) != end - start:
                if not started:
                    return self.err(replies.POP_NO_SUCH_MESSAGE)
                self.log.info("message vanished during RETR; closing")
                return self.close_connection()
            if not started:
                self.ok(f"{entry.size} octets")
                started = True
            for piece in range(0, len(octets), CHUNK):
                self.transport.write(stuffer.feed(octets[piece:piece + CHUNK]))
                yield self.writable()
                if self.transport.disconnecting:
                    return None
        self.transport.write(stuffer.finish())

    def _next_ids(self, entry) -> list[int]:
        start = self.drop.index(entry)
        ids, total = [], 0
        for n, e in enumerate(self.drop[start:], start + 1):
            if (n in self.deleted or e.size > STREAM_OVER) and e is not entry:
                continue                    # a large message is read by ranges, not ahead
            ids.append(e.id)
            total += e.size
            if total >= READ_AHEAD_BYTES or len(ids) >= 64:
                break
        return ids

    @defer.inlineCallbacks
    def trans_QUIT(self, argument):
        # Twisted answers +OK before its sync() has committed; we answer after the COMMIT.
        self.quitting = True
        doomed = [self.drop[n - 1].id for n in sorted(self.deleted)]
        try:
            removed = yield self.lease.close(doomed)
        except StoreUnavailable:
            self.log.warn("QUIT: store unavailable, nothing deleted")
            self.err(replies.POP_SYS_TEMP)
            self._release()   # now: a TLS close can linger until the client answers
            self.close_connection()
            return
        self.log.info("QUIT: {n} messages deleted", n=removed)
        self.ok(f"{removed} messages deleted, signing off")
        self.close_connection()


def _top(message: bytes, lines: int) -> bytes:
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:
        return message
    kept = body.split(b"\r\n")[:lines]
    return head + sep + b"\r\n".join(kept) + (b"\r\n" if kept and lines else b"")


class POP3Factory(AdmittingFactory):
    protocol = POP3Session

    def __init__(self, parts, listener):
        self.parts, self.listener, self.limits = parts, listener, parts.limits
        self.name = listener.name or f"pop3-{listener.port}"

    def too_many(self, reason: str) -> bytes:
        reply = replies.POP_TOO_MANY_FROM_YOU if reason == "address" \
            else replies.POP_TOO_MANY_CONNECTIONS
        return reply.pop3() + b"\r\n"


def register_avatars(parts) -> None:
    parts.realm.register(IPOP3User, lambda account, mind: account)


def build_factory(parts, listener):
    return POP3Factory(parts, listener)
