"""IMAP commands of any state and of login: CAPABILITY, NOOP, LOGOUT, STARTTLS, LOGIN,
AUTHENTICATE PLAIN, ID, ENABLE, NAMESPACE.

Why a module of its own: this is where passwords arrive, so the rules for them live
together: no LOGIN or AUTHENTICATE without TLS after the cutover (LOGINDISABLED,
``NO [PRIVACYREQUIRED]``, RFC 3501 §6.2.3, RFC 5530), failures recorded and throttled by the
realm, STARTTLS forgetting everything pipelined before the handshake (RFC 3501 §6.2.1).
Standards: RFC 3501 §6.1–6.2, RFC 4616 (PLAIN), RFC 4959 (SASL-IR), RFC 2971 (ID),
RFC 5161 (ENABLE), RFC 2342 (NAMESPACE), RFC 7162 (CONDSTORE, QRESYNC: ENABLE).
Security: passwords are never logged; the SASL response is read in line mode, bounded by
the command limit; a PLAIN authzid naming another identity is refused (``sasl_plain``).
"""

from __future__ import annotations

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer

from mailstack import clock as clocks, replies
from mailstack.protocols import sasl_plain, starttls
from mailstack.protocols.imap_account import IMAPAccount
from mailstack.protocols.imap_replies import bad, no
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.store import logins

# Advertised only because each works (tests/e2e/test_imap_extensions.py, imaptest).
EXTENSIONS = (b"LITERAL+", b"SASL-IR", b"IDLE", b"UIDPLUS", b"MOVE", b"SPECIAL-USE",
              b"CREATE-SPECIAL-USE", b"NAMESPACE", b"ID", b"UNSELECT", b"ENABLE", b"CHILDREN",
              b"QUOTA", b"QUOTA=RES-STORAGE", b"STATUS=SIZE", b"CONDSTORE", b"QRESYNC",
              b"ESEARCH")
SERVER_ID = b'("name" "mailstack" "vendor" "mailstack")'


class LoginCommands:
    # --- capabilities ----------------------------------------------------------------------
    def starttls_offered(self) -> bool:
        return starttls.offered(self.listener, self.transport, self.tls_options)

    def password_allowed(self) -> bool:
        return self.tls or self.tls_requirement.allows_plaintext()

    def capabilities(self) -> list[bytes]:
        caps = [b"IMAP4rev1"]
        if self.state == "not-auth":
            if self.starttls_offered():
                caps.append(b"STARTTLS")
            caps.append(b"AUTH=PLAIN" if self.password_allowed() else b"LOGINDISABLED")
        caps.extend(EXTENSIONS)
        caps.append(b"APPENDLIMIT=%d" % self.imap_config.max_append_size)
        return caps

    async def cmd_CAPABILITY(self, command):
        self.untagged(b"CAPABILITY " + b" ".join(self.capabilities()))
        return b"CAPABILITY completed"

    async def cmd_NOOP(self, command):
        if self.view is not None:
            self.view.dirty = True        # other processes' changes too (RFC 3501 §6.1.2)
        return b"NOOP completed"

    async def cmd_LOGOUT(self, command):
        self.untagged(b"BYE mailstack logging out")
        self.leave_folder()
        self.send(command.tag + b" OK LOGOUT completed")
        self.state = "logout"
        self.close()
        return None

    async def cmd_NAMESPACE(self, command):
        self.untagged(b'NAMESPACE (("" "/")) NIL NIL')
        return b"NAMESPACE completed"

    # --- STARTTLS ------------------------------------------------------------------------
    async def cmd_STARTTLS(self, command):
        if self.tls:
            raise bad(b"TLS already active")
        if not self.starttls_offered():
            raise bad(b"STARTTLS not available")
        self.send(command.tag + b" OK Begin TLS negotiation now")
        self.log.info("STARTTLS")
        starttls.begin_tls(self, self.tls_options)
        return None

    def reset_after_tls(self):
        """RFC 3501 §6.2.1: nothing pipelined before the handshake survives it."""
        self.framing.reset()

    # --- LOGIN and AUTHENTICATE ------------------------------------------------------------
    async def cmd_LOGIN(self, command):
        if not self.password_allowed():
            self.log.info("LOGIN refused: TLS required")
            raise no(b"[PRIVACYREQUIRED] Plaintext login is disabled: use STARTTLS or port 993")
        return await self._login(command.user, command.password, "LOGIN")

    async def cmd_AUTHENTICATE(self, command):
        if command.mechanism.upper() != "PLAIN":
            raise no(b"[CANNOT] Unsupported authentication mechanism")
        if not self.password_allowed():
            raise no(b"[PRIVACYREQUIRED] Use STARTTLS or port 993")
        response = command.initial
        if response is None:
            self.send(b"+ ")
            response = await self._read_line()
        if sasl_plain.cancelled(response):
            raise bad(b"AUTHENTICATE cancelled")
        try:
            user, password = sasl_plain.read_plain(response)
        except sasl_plain.ForeignAuthzid:
            raise no(replies.IMAP_AUTH_FAILED) from None
        except sasl_plain.Malformed:
            raise bad(b"Invalid base64 in the SASL response") from None
        return await self._login(user, password, "PLAIN")

    def _read_line(self) -> defer.Deferred:
        """The next line the client sends, read outside the command grammar."""
        d = defer.Deferred()
        self.framing.line_mode = True

        def got(line):
            self.framing.line_mode = False
            d.callback(line)
        self.on_line = got
        return d

    async def _login(self, user: bytes, password: bytes, mechanism: str):
        credentials = SessionCredentials(user, password, protocol="imap", client_ip=self.client_ip,
                                         tls=self.tls, mechanism=mechanism,
                                         client_name=self.client_id,
                                         port=self.transport.getHost().port)
        try:
            _iface, account, logout = await self.portal.login(credentials, None, IMAPAccount)
        except UnauthorizedLogin:
            raise no(replies.IMAP_AUTH_FAILED) from None
        except TemporaryAuthFailure:
            raise no(replies.IMAP_UNAVAILABLE) from None
        if not self.ticket.add_user(account.ref.address):
            self.log.info("too many connections for {user}", user=account.ref.address)
            raise no(replies.IMAP_TOO_MANY_FOR_ACCOUNT)
        self.login_deadline.cancel()
        self.account, self.state = account, "auth"
        self.setTimeout(self.imap_config.idle_timeout)     # RFC 3501 §5.4: 30 minutes
        self.logged_in_at = clocks.now(self.clock)
        self.log.info("login {user} via {mechanism}", user=account.ref.address,
                      mechanism=mechanism)
        return b"[CAPABILITY " + b" ".join(self.capabilities()) + b"] Logged in"

    # --- ID and ENABLE ---------------------------------------------------------------------
    client_id = None          # "Thunderbird 115.3" from the client's ID command
    logged_in_at = None

    async def cmd_ID(self, command):
        """RFC 2971: answer with our name; the client's goes on its login event."""
        fields = {k.lower(): v for k, v in (command.params or ())}
        name = b" ".join(v for k in (b"name", b"version") if (v := fields.get(k)))
        if name:
            self.client_id = name.decode("utf-8", "replace")[:255]
            self.log.info("client ID {name}", name=self.client_id)
            if self.account is not None and self.logged_in_at is not None:
                try:
                    await self.db.run(logins.name_client, self.account.ref.id,
                                      self.client_ip, "imap", self.client_id,
                                      self.logged_in_at)
                except Exception as e:
                    self.log.warn("recording the client ID failed: {e}", e=e)
        self.untagged(b"ID " + SERVER_ID)
        return b"ID completed"

    async def cmd_ENABLE(self, command):
        """RFC 5161: CONDSTORE and QRESYNC can be enabled (imap_condstore); the rest of
        our extensions needs no enabling."""
        enabled = self.enable_extensions(command.capabilities)
        self.untagged(b"ENABLED" + b"".join(b" " + name for name in enabled))
        return b"ENABLE completed"
