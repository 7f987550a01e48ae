"""IMAP4rev1 on 143 (STARTTLS) and 993 (implicit TLS), on Twisted's parser.

Why a subclass: Twisted's IMAP parser (literals, nested lists, FETCH attributes, ENVELOPE,
BODYSTRUCTURE) is sound and large; its command handlers are not (TWISTED-NOTES).  Each
handler we replace is re-declared in the class-level dispatch tuples, because Twisted binds
the *base* functions there.  What we fix: commands pipelined after STARTTLS (executed under
TLS), cleartext LOGIN rules, exception text sent to clients, CREATE/DELETE/RENAME/SUBSCRIBE
answered before the commit, SELECT without UIDNEXT/PERMANENTFLAGS/UNSEEN, ``\\Seen`` never
set by ``BODY[]``, partial fetches returning the whole body, APPEND without flags failing
and its literal uncapped, and store errors reported as BAD instead of ``NO [UNAVAILABLE]``.

Standards: RFC 3501, RFC 2595 (STARTTLS), RFC 4616 (AUTHENTICATE PLAIN), RFC 5530
(response codes), RFC 7889 (APPENDLIMIT, TOOBIG), RFC 2971 (ID), RFC 5161 (ENABLE),
RFC 4315 (APPENDUID).  Folder commands live in ``imap_folders``, message commands in
``imap_selected``, IDLE in ``imap_idle``.
Security: no password before TLS after the cutover (LOGINDISABLED, NO [PRIVACYREQUIRED]);
failures are recorded and throttled by the realm; the APPEND literal is capped.
"""

from __future__ import annotations

import base64
import binascii

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer, protocol
from twisted.internet.interfaces import ISSLTransport
from twisted.mail import imap4

from mailstack import clock as clocks, replies
from mailstack.logs import SessionLog, new_session_id
from mailstack.protocols import starttls
from mailstack.protocols.imap_folders import FolderCommands
from mailstack.protocols.imap_idle import IdleState
from mailstack.protocols.imap_mailbox import Account, PERMANENT_FLAGS
from mailstack.protocols.imap_selected import SelectedState, _name
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.store import logins
from mailstack.store.errors import OverQuota, StoreUnavailable

P = imap4.IMAP4Server


class TooBig(Exception):
    pass


def _b(reply) -> bytes:
    return reply.imap()


_REFUSALS = {imap4.IllegalClientResponse: replies.IMAP_SYNTAX,
             imap4.IllegalMailboxEncoding: replies.IMAP_BAD_MAILBOX_NAME,
             imap4.IllegalOperation: replies.IMAP_NOT_ALLOWED}


# Advertised only because each works (tests/e2e/test_imap_extensions.py).  No LITERAL+:
# Twisted's parser treats ``{5+}`` as a command line (TWISTED-NOTES).
EXTENSIONS = (b"IDLE", b"UIDPLUS", b"MOVE", b"SPECIAL-USE", b"CREATE-SPECIAL-USE", b"NAMESPACE",
              b"ID", b"UNSELECT", b"ENABLE", b"CHILDREN", b"QUOTA", b"QUOTA=RES-STORAGE",
              b"STATUS=SIZE")
SERVER_ID = b'("name" "mailstack" "vendor" "mailstack")'


class IMAPServer(IdleState, FolderCommands, SelectedState, imap4.IMAP4Server):
    IDENT = b"mailstack IMAP4rev1 ready"
    MAX_LENGTH = 8192

    def __init__(self, parts, listener, name):
        super().__init__(chal={}, contextFactory=None)
        self.parts, self.listener, self.name = parts, listener, name
        self.timeOut = self.POSTAUTH_TIMEOUT = parts.config.imap.idle_timeout
        self.client_id = None       # "Thunderbird 115.3" from the client's ID command
        self.logged_in_at = None

    def connectionMade(self):
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.imap", self.session_id, self.client_ip)
        self.callLater = self.parts.clock.callLater
        self.log.info("connect {name} tls={tls}", name=self.name, tls=self.tls)
        super().connectionMade()

    def connectionLost(self, reason=protocol.connectionDone):
        super().connectionLost(reason)
        self.log.info("disconnect")

    @property
    def tls(self) -> bool:
        return ISSLTransport.providedBy(self.transport)

    # --- errors never carry exception text --------------------------------------------------

    # One command at a time: Twisted runs pipelined commands concurrently, and its FETCH
    # keeps per-command state on the protocol (two pipelined FETCHes crash it).  Every
    # command line waits in ``blocked`` until the previous command's tagged reply; lines
    # that continue a command (literals, SASL responses) are never held back.
    _tls_epoch = 0

    def lineReceived(self, line):
        if self.blocked is not None and self.parseState == "command":
            self.blocked.append(line)
            return
        self.resetTimeout()
        try:
            getattr(self, "parse_" + self.parseState)(line)
        except Exception:
            # Twisted answers "BAD Server error: <exception text>"; we log and say less.
            self.log.failure("IMAP command failed")
            self.sendBadResponse(None, _b(replies.IMAP_SERVER_BUG))
            self._unblock()

    # Twisted answers parser errors with the exception text ("Illegal syntax: ..."); we
    # route every refusal through _failed, which sends a fixed text and logs the detail.
    def parse_command(self, line):
        if self.blocked is None:
            self.blocked = []
        args = line.split(None, 2)
        if len(args) < 2:
            super().parse_command(line)
            return self._unblock()
        tag, cmd, rest = args[0], args[1].upper(), (args[2] if len(args) == 3 else None)
        try:
            return self.dispatchCommand(tag, cmd, rest)
        except Exception:
            return self._failed(defer.Failure(), tag)

    def _respond(self, state, tag, message):
        super()._respond(state, tag, message)
        if tag and state in (b"OK", b"NO", b"BAD"):
            self._unblock()

    def _unblock(self):
        commands, self.blocked = self.blocked, None
        epoch = self._tls_epoch
        while commands and self.blocked is None and epoch == self._tls_epoch:
            self.lineReceived(commands.pop(0))
        if epoch == self._tls_epoch and commands and self.blocked is not None:
            self.blocked[:0] = commands

    def _IMAP4Server__ebDispatch(self, failure, tag):
        self._failed(failure, tag)

    def _failed(self, failure, tag):
        """The one tagged answer for every failure: a fixed text, the detail only in the log."""
        if failure.check(TooBig):
            return self.sendNegativeResponse(tag, _b(replies.IMAP_TOO_BIG))
        refusal = _REFUSALS.get(failure.type)
        if refusal is not None:
            self.log.info("command refused: {why}", why=str(failure.value)[:200])
            send = self.sendBadResponse if refusal is replies.IMAP_SYNTAX else self.sendNegativeResponse
            return send(tag, _b(refusal))
        if failure.check(StoreUnavailable):
            self.log.warn("store unavailable")
            return self.sendNegativeResponse(tag, _b(replies.IMAP_UNAVAILABLE))
        self.log.failure("IMAP command failed", failure)
        self.sendNegativeResponse(tag, _b(replies.IMAP_SERVER_BUG))

    def lineLengthExceeded(self, line):
        self.log.info("line too long; closing")
        self.sendLine(b"* BYE [TOOBIG] Line too long")
        self.transport.loseConnection()

    # --- capabilities, TLS, login -------------------------------------------------------

    def starttls_offered(self) -> bool:
        return (self.listener.tls == "starttls" and not self.tls
                and self.parts.tls_options is not None)

    def password_allowed(self) -> bool:
        return self.tls or self.parts.tls_requirement.allows_plaintext()

    def capabilities(self):
        caps = {}
        if self.starttls_offered():
            caps[b"STARTTLS"] = None
        if self.password_allowed():
            caps[b"AUTH"] = [b"PLAIN"]
        else:
            caps[b"LOGINDISABLED"] = None
        for name in EXTENSIONS:
            caps[name] = None
        caps[b"APPENDLIMIT=%d" % self.parts.config.imap.max_append_size] = None
        return caps

    def do_STARTTLS(self, tag):
        if self.tls:
            return self.sendNegativeResponse(tag, b"TLS already active")
        if not self.starttls_offered():
            return self.sendBadResponse(tag, b"STARTTLS not available")
        self.sendPositiveResponse(tag, b"Begin TLS negotiation now")
        self.log.info("STARTTLS")
        starttls.begin_tls(self, self.parts.tls_options)

    unauth_STARTTLS = (do_STARTTLS,)

    def reset_after_tls(self):
        """RFC 3501 §6.2.1: discard everything pipelined after STARTTLS."""
        self._tls_epoch += 1
        self.blocked = None
        self.tags = {}

    def do_LOGIN(self, tag, user, passwd):
        if not self.password_allowed():
            self.log.info("LOGIN refused: TLS required")
            return self.sendNegativeResponse(
                tag, b"[PRIVACYREQUIRED] Plaintext login is disabled: use STARTTLS or port 993")
        return self._login(tag, user, passwd, "LOGIN")

    unauth_LOGIN = (do_LOGIN, P.arg_astring, P.arg_finalastring)

    def do_AUTHENTICATE(self, tag, mechanism):
        if mechanism.upper() != b"PLAIN":
            return self.sendNegativeResponse(tag, b"Unsupported authentication mechanism")
        if not self.password_allowed():
            return self.sendNegativeResponse(tag, b"[PRIVACYREQUIRED] Use STARTTLS or port 993")
        self.parseState = "pending"
        self._pendingLiteral = defer.Deferred()
        self.sendContinuationRequest(None)
        self._pendingLiteral.addCallback(self._plain_response, tag)

    unauth_AUTHENTICATE = (do_AUTHENTICATE, P.arg_atom)

    def _plain_response(self, line, tag):
        if line.strip() == b"*":
            return self.sendBadResponse(tag, b"AUTHENTICATE cancelled")
        try:
            _authzid, user, password = base64.b64decode(line.strip(), validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            return self.sendBadResponse(tag, b"Invalid base64 in the SASL response")
        return self._login(tag, user, password, "PLAIN")

    def _login(self, tag, user, password, mechanism):
        credentials = SessionCredentials(user, password, protocol="imap", client_ip=self.client_ip,
                                         tls=self.tls, mechanism=mechanism,
                                         client_name=self.client_id,
                                         port=self.transport.getHost().port)
        d = self.parts.portal.login(credentials, None, imap4.IAccount)
        d.addCallbacks(self._logged_in, self._login_failed, (tag,), None, (tag,), None)
        return d

    def _logged_in(self, result, tag):
        _iface, account, logout = result
        self.account, self._onLogout, self.state = account, logout, "auth"
        self.logged_in_at = clocks.now(self.parts.clock)
        caps = b" ".join(self.listCapabilities())
        self.sendPositiveResponse(tag, b"[CAPABILITY " + caps + b"] Logged in")
        self.setTimeout(self.POSTAUTH_TIMEOUT)

    def _login_failed(self, failure, tag):
        if failure.check(UnauthorizedLogin):
            return self.sendNegativeResponse(tag, _b(replies.IMAP_AUTH_FAILED))
        if failure.check(TemporaryAuthFailure):
            return self.sendNegativeResponse(tag, _b(replies.IMAP_UNAVAILABLE))
        self._failed(failure, tag)

    # --- mailboxes -----------------------------------------------------------------------

    def _ebSelectWork(self, failure, cmdName, tag):
        self._failed(failure, tag)

    def _cbSelectWork(self, mbox, cmdName, tag):
        if mbox is None:
            return self.sendNegativeResponse(tag, b"[NONEXISTENT] No such mailbox")
        self.sendUntaggedResponse(b"%d EXISTS" % mbox.getMessageCount())
        self.sendUntaggedResponse(b"0 RECENT")
        self.sendUntaggedResponse(b"FLAGS (" + " ".join(mbox.getFlags()).encode() + b")")
        permanent = " ".join(PERMANENT_FLAGS if mbox.isWriteable() else ()).encode()
        self.sendPositiveResponse(None, b"[PERMANENTFLAGS (" + permanent + b")] Flags permitted")
        unseen = mbox.first_unseen()
        if unseen is not None:
            self.sendPositiveResponse(None, b"[UNSEEN %d] First unseen" % unseen)
        self.sendPositiveResponse(None, b"[UIDVALIDITY %d] UIDs valid" % mbox.getUIDValidity())
        self.sendPositiveResponse(None, b"[UIDNEXT %d] Predicted next UID" % mbox.getUIDNext())
        mode = b"READ-WRITE" if mbox.isWriteable() else b"READ-ONLY"
        self.sendPositiveResponse(tag, b"[" + mode + b"] " + cmdName + b" completed")
        self.state, self.mbox = "select", mbox

    # --- ID and ENABLE ---------------------------------------------------------------------

    def do_ID(self, tag, line):
        """RFC 2971: answer with our name; the client's goes on its login event."""
        try:
            fields = imap4.parseNestedParens(line or b"")
        except imap4.MismatchedNesting:
            return self.sendBadResponse(tag, b"Bad ID syntax")
        params = fields[0] if len(fields) == 1 and isinstance(fields[0], list) else []
        if len(fields) != 1 or (fields[0] is not None and not isinstance(fields[0], list)):
            return self.sendBadResponse(tag, b"ID takes a parameter list or NIL")
        pairs = dict(zip(params[0::2], params[1::2]))
        name = b" ".join(v for k in (b"name", b"version") for key, v in pairs.items()
                         if isinstance(key, bytes) and key.lower() == k and isinstance(v, bytes))
        recorded = defer.succeed(None)
        if name:
            self.client_id = name.decode("utf-8", "replace")[:255]
            self.log.info("client ID {name}", name=self.client_id)
            if self.account is not None and self.logged_in_at is not None:
                recorded = self.parts.db.run(logins.name_client, self.account.ref.id,
                                             self.client_ip, "imap", self.client_id,
                                             self.logged_in_at)
                recorded.addErrback(
                    lambda f: self.log.warn("recording the client ID failed: {e}", e=f.value))

        def answer(_):
            self.sendUntaggedResponse(b"ID " + SERVER_ID)
            self.sendPositiveResponse(tag, b"ID completed")
        return recorded.addCallback(answer)

    unauth_ID = auth_ID = select_ID = (do_ID, P.arg_line)

    def do_ENABLE(self, tag, line):
        """RFC 5161: none of our extensions needs enabling, so nothing is enabled."""
        self.sendUntaggedResponse(b"ENABLED")
        self.sendPositiveResponse(tag, b"ENABLE completed")

    auth_ENABLE = (do_ENABLE, P.arg_line)

    # --- APPEND ---------------------------------------------------------------------------

    def arg_append_literal(self, line):
        if line[:1] == b"{" and line[-1:] == b"}" and line[1:-1].isdigit():
            if int(line[1:-1]) > self.parts.config.imap.max_append_size:
                raise TooBig()
        return self.arg_literal(line)

    @defer.inlineCallbacks
    def do_APPEND(self, tag, mailbox, flags, date, message):
        try:
            mbox = yield self.account.select(_name(mailbox))
            if mbox is None:
                return self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
            flags = [f.decode("utf-8", "replace") for f in (flags or [])]
            uid = yield mbox.addMessage(message, flags, date)
        except OverQuota:
            return self.sendNegativeResponse(tag, _b(replies.IMAP_OVER_QUOTA))
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if self.mbox is not None and self.mbox.folder.id == mbox.folder.id:
            yield self.announce_changes()
        self.log.info("APPEND to {box}: uid {uid}", box=mbox.folder.name, uid=uid)
        self.sendPositiveResponse(
            tag, b"[APPENDUID %d %d] APPEND completed" % (mbox.getUIDValidity(), uid))

    auth_APPEND = select_APPEND = (do_APPEND, P.arg_astring, P.opt_plist, P.opt_datetime,
                                   arg_append_literal)

class IMAPFactory(protocol.ServerFactory):
    noisy = False   # ListenerService logs the listening line once

    def __init__(self, parts, listener):
        self.parts, self.listener = parts, listener
        self.name = listener.name or f"imap-{listener.port}"

    def buildProtocol(self, addr):
        server = IMAPServer(self.parts, self.listener, self.name)
        server.factory = self
        server.portal = self.parts.portal
        return server


def register_avatars(parts) -> None:
    parts.realm.register(imap4.IAccount, lambda account, mind: Account(parts, account))


def build_factory(parts, listener):
    return IMAPFactory(parts, listener)
