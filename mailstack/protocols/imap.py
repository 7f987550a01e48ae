"""IMAP4rev1 on 143 (STARTTLS) and 993 (implicit TLS): the session, on Twisted's Protocol.

Why our own: Twisted's ``IMAP4Server`` left commands it could not parse unanswered (and
every command after them), accepted literal sizes such as ``{+60000000}``, wrote flags as
absolute values from a cached copy, re-serialised message parts and stalled the reactor on
long sequence sets (TWISTED-NOTES).  Here the layers are ours and small: ``imap_framing``
cuts the stream into commands, ``imap_parser`` reads one into a typed command, this module
runs one command at a time through the table of its state and always answers the tag
(RFC 3501 §2.2.2); the commands live in ``imap_login``, ``imap_folders``,
``imap_selected``, ``imap_fetch`` and ``imap_idle``, the selected folder in ``imap_view``.

Before each tagged reply in the selected state the session tells the client what other
sessions changed (RFC 3501 §5.2, §7.4.1): flags and new messages always, expunges except
during FETCH, STORE and SEARCH.

Standards: RFC 3501, RFC 7888 (LITERAL+), RFC 5530 (response codes), RFC 7889 (APPENDLIMIT),
RFC 7162 (CONDSTORE, QRESYNC: ``imap_condstore``).
Security: one command runs at a time; the socket is not read while replies wait to be sent
(a client that never reads cannot make us queue them) nor while a command is queued; every
size is bounded before bytes are kept; no exception text reaches a client; a password is
never logged.
"""

from __future__ import annotations

import time

from twisted.internet import defer, protocol
from twisted.protocols import policies

from mailstack import replies
from mailstack.logs import SessionLog, new_session_id
from mailstack.protocols import imap_framing as framing, starttls
from mailstack.protocols.connection_limits import UNCOUNTED, AdmittingFactory
from mailstack.protocols.deadlines import Deadline
from mailstack.protocols.framed_flow import FramedFlow
from mailstack.protocols.imap_account import Account, IMAPAccount
from mailstack.protocols.imap_condstore import CondstoreCommands
from mailstack.protocols.imap_folders import FolderCommands
from mailstack.protocols.imap_idle import IdleCommands
from mailstack.protocols.imap_literals import MAX_COMMAND, LiteralAdmission
from mailstack.protocols.imap_login import LoginCommands
from mailstack.protocols.imap_parser import ParseError, parse_command
from mailstack.protocols.imap_replies import Refusal, bad, no
from mailstack.protocols.imap_search_grammar import BadCharset
from mailstack.protocols.imap_selected import SelectedCommands
from mailstack.protocols.imap_utf7 import BadMailboxName
from mailstack.store.errors import StoreUnavailable

NOT_AUTHENTICATED, AUTHENTICATED, SELECTED, LOGOUT = "not-auth", "auth", "selected", "logout"
ANY = (NOT_AUTHENTICATED, AUTHENTICATED, SELECTED)
AUTHED = (AUTHENTICATED, SELECTED)

# Which state each command may run in (RFC 3501 §6).  The handler is ``cmd_<NAME>``.
STATES = {
    "CAPABILITY": ANY, "NOOP": ANY, "LOGOUT": ANY, "ID": ANY,
    "STARTTLS": (NOT_AUTHENTICATED,), "LOGIN": (NOT_AUTHENTICATED,),
    "AUTHENTICATE": (NOT_AUTHENTICATED,),
    **{name: AUTHED for name in (
        "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE",
        "LIST", "LSUB", "STATUS", "APPEND", "IDLE", "NAMESPACE", "ENABLE", "GETQUOTAROOT",
        "GETQUOTA", "SETQUOTA")},
    **{name: (SELECTED,) for name in (
        "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE")},
}
# Sequence numbers must hold still while these answer (RFC 3501 §7.4.1): no EXPUNGE.
NO_EXPUNGE = frozenset({"FETCH", "STORE", "SEARCH"})


class IMAPServer(LoginCommands, FolderCommands, SelectedCommands, CondstoreCommands,
                 IdleCommands, LiteralAdmission, FramedFlow, protocol.Protocol,
                 policies.TimeoutMixin):
    ticket = UNCOUNTED          # the listener's admission (connection_limits.py)

    def __init__(self, factory):
        # What every session of the listener shares, as service.py gave it to the factory.
        self.factory, self.listener, self.name = factory, factory.listener, factory.name
        self.imap_config, self.db, self.clock = factory.settings, factory.db, factory.clock
        self.portal, self.watch, self.spool_dir = factory.portal, factory.watch, factory.spool_dir
        self.tls_options, self.tls_requirement = factory.tls_options, factory.tls_requirement
        self.spam_learner = factory.spam_learner
        self.state = NOT_AUTHENTICATED
        self.account = None          # imap_account.Account once logged in
        self.view = None             # imap_view.FolderView of the selected folder
        self.framing = framing.Framing(MAX_COMMAND)
        self.on_line = None          # line-mode handler (IDLE, AUTHENTICATE)
        self.start_flow()            # back-pressure, one command at a time (framed_flow.py)

    # --- connection -------------------------------------------------------------------------
    def connectionMade(self):
        self.client_ip = self.transport.getPeer().host
        self.session_id = new_session_id()
        self.log = SessionLog("mailstack.imap", self.session_id, self.client_ip)
        self.callLater = self.clock.callLater
        self.setTimeout(self.imap_config.login_timeout)     # idle_timeout once logged in
        # Logged in within login_timeout, however busy the client keeps us (issue 13).
        self.login_deadline = Deadline(self.clock, self.imap_config.login_timeout,
                                       self._login_too_late)
        self.transport.registerProducer(self, True)
        self.log.info("connect {name} tls={tls}", name=self.name, tls=self.tls)
        caps = b" ".join(self.capabilities())
        self.send(b"* OK [CAPABILITY " + caps + b"] mailstack IMAP4rev1 ready")

    def connectionLost(self, reason=protocol.connectionDone):
        self.setTimeout(None)
        self.login_deadline.cancel()
        self._stop_literal_deadline()
        self.framing.reset()         # a literal's spool, half received, is let go
        self.ticket.release()
        self.leave_folder()
        self.stop_idle()
        self._release_writers()
        self.log.info("disconnect")

    def timeoutConnection(self):
        self.log.info("idle timeout")
        self.send(b"* BYE Idle timeout")
        self.close()

    def _login_too_late(self):
        if self.account is None and not self.transport.disconnecting:
            self.log.info("no login within {s} s", s=self.imap_config.login_timeout)
            self.send(b"* BYE No login in time")
            self.close()

    def close(self):
        """Close once what was written is sent (a registered producer would hold it open)."""
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    @property
    def tls(self) -> bool:
        return starttls.is_tls(self.transport)

    # --- output (back-pressure: framed_flow.py) ------------------------------------------------------------
    def send(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")

    def untagged(self, data: bytes) -> None:
        self.transport.write(b"* " + data + b"\r\n")

    # --- input ---------------------------------------------------------------------------
    def dataReceived(self, data: bytes):
        self.resetTimeout()
        if self.literal_deadline is not None:
            self.literal_deadline.add(len(data))
        self.take(data)

    def _handle(self, event):
        if not isinstance(event, framing.Line):
            self._stop_literal_deadline()      # the literal it waited for has come
        if isinstance(event, framing.Command):
            self._run(event)
        elif isinstance(event, framing.LiteralRequest):
            self.literal_requested(event)
        elif isinstance(event, framing.Line):
            handler, self.on_line = self.on_line, None
            if handler is not None:
                handler(event.raw)
        elif isinstance(event, framing.TooLong):     # only the tag: the rest may be a password
            self.log.info("{tag} command line too long", tag=_printable(framing.tag_of(event.head)))
            self._answer(framing.tag_of(event.head), b"BAD", b"[TOOBIG] Command line too long")
        elif isinstance(event, framing.Discarded) and event.failed:
            self.log.warn("spooling a literal failed")
            self._answer(framing.tag_of(event.head), b"NO", replies.IMAP_UNAVAILABLE.imap())
        elif isinstance(event, framing.Discarded):
            self._answer(framing.tag_of(event.head), b"NO", replies.IMAP_TOO_BIG.imap())

    # --- the selected folder -------------------------------------------------------------
    def enter_folder(self, view):
        self.view, self.state = view, SELECTED
        view.unwatch = self.watch.watch(view.folder.id, lambda: view.folder.modseq,
                                        lambda: self.folder_changed(view))

    def leave_folder(self):
        view, self.view = self.view, None
        if view is not None and view.unwatch is not None:
            view.unwatch()
        if self.state == SELECTED:
            self.state = AUTHENTICATED

    def folder_changed(self, view):
        """Someone committed to the selected folder: read it before the next reply."""
        view.dirty = True
        if self.idling:
            self.idle_wake()

    async def announce(self, expunge: bool = True):
        await self.view.announce(self.untagged, expunge)

    # --- running a command ---------------------------------------------------------------
    def may_run(self, name: str) -> bool:
        """Whether command ``name`` is allowed in the session's state."""
        return self.state in STATES.get(name, ())

    def _run(self, framed: framing.Command):
        started = time.monotonic()
        raw = framed.raw
        try:
            command = parse_command(raw, framed.spooled)
        except (BadCharset, BadMailboxName) as e:     # well-formed, but refused: NO
            framed.close()
            code = b"[BADCHARSET (US-ASCII UTF-8)] " if isinstance(e, BadCharset) else b"[CANNOT] "
            return self._refuse(e.tag, _name_of(raw), b"NO", code + e.text.encode(), started)
        except ParseError as e:
            framed.close()
            return self._refuse(e.tag, _name_of(raw), b"BAD", e.text.encode(), started)
        if not self.may_run(command.name):
            framed.close()
            return self._refuse(command.tag, command.name, b"BAD",
                                b"Command not valid in this state", started)
        self._busy = True
        d = defer.ensureDeferred(self._execute(command))
        d.addBoth(_closing, framed)                   # its spool, once answered
        d.addCallback(self._finished, command, started)
        d.addErrback(self._crashed, command)

    async def _execute(self, command):
        handler = getattr(self, "cmd_" + command.name)
        try:
            text = await handler(command)
            status = b"OK"
        except Refusal as refusal:
            status, text = refusal.status, refusal.text
        except StoreUnavailable:
            self.log.warn("store unavailable during {name}", name=command.name)
            status, text = b"NO", replies.IMAP_UNAVAILABLE.imap()
        if self.view is not None and self.state == SELECTED and text is not None:
            expunge = not (command.name in NO_EXPUNGE and not getattr(command, "uid", False))
            await self.announce(expunge=expunge)
        return status, text

    def _refuse(self, tag, name: str, status: bytes, text: bytes, started: float):
        """A command answered before it ran (syntax, state): logged like any other."""
        self._answer(tag, status, text)
        self._log_result(tag, name, status, started, text)

    def _finished(self, result, command, started):
        status, text = result
        if text is not None:          # None: the handler answered (LOGOUT, STARTTLS)
            self._answer(command.tag, status, text)
        self._log_result(command.tag, command.name, status, started,
                         text if status != b"OK" else b"")
        self._done()

    def _log_result(self, tag, name: str, status: bytes, started: float, why: bytes = b""):
        """One line per command at debug level: never arguments, so never a password."""
        self.log.debug("{tag} {name} {status} {ms:.1f} ms{why}", tag=_printable(tag),
                       name=name, status=status.decode(),
                       ms=(time.monotonic() - started) * 1000,
                       why=" " + why.decode("utf-8", "replace")[:120] if why else "")

    def _crashed(self, failure, command):
        self.log.failure("IMAP {name} failed", failure, name=command.name)
        if not self.transport.disconnecting:
            self._answer(command.tag, b"NO", replies.IMAP_SERVER_BUG.imap())
        self._done()

    def _done(self):
        self._command_done()

    def _answer(self, tag, status: bytes, text: bytes):
        self.send((tag or b"*") + b" " + status + b" " + text)


def _closing(result, framed: framing.Command):
    framed.close()
    return result


def _name_of(raw: bytes) -> str:
    """The command word of a line that did not parse, for the log (never its arguments)."""
    words = raw.split(b" ", 3)
    name = words[1] if len(words) > 1 else b"?"
    if name.upper() == b"UID" and len(words) > 2:
        name = b"UID " + words[2]
    return name[:20].decode("ascii", "replace").upper()


def _printable(tag) -> str:
    return (tag or b"*").decode("ascii", "replace")[:64]


class IMAPFactory(AdmittingFactory):
    """One IMAP listener: what its sessions share, each given by ``service.py``.

    ``settings`` is the ``[imap]`` section; ``tls_options`` the server's certificate (None
    when there is none: no STARTTLS); ``tls_requirement`` when a password needs TLS;
    ``watch`` who is told of commits to a folder (``store/watch.py``); ``spool_dir`` where
    a large APPEND literal is spooled; ``limits`` the admission shared by every listener;
    ``spam_learner`` (``spam/learning.py``) when moves into and out of \\Junk teach rspamd.
    """

    def __init__(self, listener, *, settings, db, clock, portal, tls_options, tls_requirement,
                 watch, spool_dir, limits, spam_learner=None):
        self.listener, self.name = listener, listener.name or f"imap-{listener.port}"
        self.settings, self.db, self.clock, self.portal = settings, db, clock, portal
        self.tls_options, self.tls_requirement = tls_options, tls_requirement
        self.watch, self.spool_dir, self.limits = watch, spool_dir, limits
        self.spam_learner = spam_learner

    def build_session(self, addr):
        return IMAPServer(self)

    def too_many(self, reason: str) -> bytes:
        reply = replies.IMAP_TOO_MANY_FROM_YOU if reason == "address" \
            else replies.IMAP_TOO_MANY_CONNECTIONS
        return b"* BYE " + reply.imap() + b"\r\n"


def register_avatars(realm, db, clock) -> None:
    """An IMAP login's avatar is the account's folders (``imap_account.Account``)."""
    realm.register(IMAPAccount, lambda account, mind: Account(db, clock, account))
