"""Every reply the servers send, built once.

Why: the text a customer sees, the text the log stores and the text the support desk
searches for must be the same string (ARCHITECTURE C4).  A ``Reply`` renders itself for
SMTP (code + RFC 3463 enhanced status + text), POP3 (``-ERR [RESP-CODE]``, RFC 2449/3206)
and IMAP (``NO [CODE]``, RFC 3501 §7.1).  Client-facing text never carries exception
strings or internal details.

Standards: RFC 5321 §4.2, RFC 3463, RFC 2034, RFC 2449 §8, RFC 3206.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    code: int
    status: str  # enhanced status code, "x.y.z"
    text: str

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        return self.code >= 500

    def smtp(self) -> bytes:
        """One or more reply lines without the final CRLF (Twisted's sendCode adds it)."""
        return f"{self.code} {self.status} {self.text}".encode("utf-8")

    def __str__(self) -> str:
        return f"{self.code} {self.status} {self.text}"

    def format(self, **values: str) -> "Reply":
        return Reply(self.code, self.status, self.text.format(**values))


# --- SMTP: session and syntax -------------------------------------------------------
SERVICE_READY = Reply(220, "2.0.0", "{host} ESMTP mailstack ready")
CLOSING = Reply(221, "2.0.0", "Bye")
OK = Reply(250, "2.0.0", "OK")
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
QUEUED = Reply(250, "2.0.0", "Ok: queued as {id}")
START_DATA = Reply(354, "2.0.0", "End data with <CR><LF>.<CR><LF>")
READY_TLS = Reply(220, "2.0.0", "Ready to start TLS")
SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error, command unrecognized")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
ARGUMENT_ERROR = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
BAD_ADDRESS = Reply(501, "5.1.3", "Bad recipient address syntax")
BAD_SENDER = Reply(501, "5.1.7", "Bad sender address syntax")
PARAMETER_UNSUPPORTED = Reply(555, "5.5.4", "Unsupported MAIL/RCPT parameter")
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
CANNOT_VRFY = Reply(252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery")
HELP = Reply(214, "2.0.0", "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT STARTTLS")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
NEED_HELO = Reply(503, "5.5.1", "Send HELO/EHLO first")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL before RCPT")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT before DATA")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already specified")
TLS_ALREADY = Reply(503, "5.5.1", "TLS already active")
TLS_UNAVAILABLE = Reply(454, "4.7.0", "TLS not available")
NON_UTF8 = Reply(500, "5.6.7", "Command is not valid UTF-8")
TIMEOUT = Reply(421, "4.4.2", "{host} Idle timeout, closing connection")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
SHUTTING_DOWN = Reply(421, "4.3.2", "{host} Service shutting down")
TEMPORARY_CLOSE = Reply(421, "4.3.0", "{host} Temporary local problem, closing connection")
# Connection limits (protocols/connection_limits.py): 421 at the greeting, RFC 5321 §3.8.
TOO_MANY_FROM_YOU = Reply(421, "4.7.0", "{host} Too many connections from your address, try again later")
TOO_MANY_CONNECTIONS = Reply(421, "4.3.2", "{host} Too many connections, try again later")
TOO_MANY_FOR_ACCOUNT = Reply(454, "4.7.0", "Too many connections for this account, try again later")
TOO_SLOW = Reply(421, "4.4.2", "{host} Data arriving too slowly, closing connection")
TOO_MANY_JUNK = Reply(421, "4.7.0", "{host} Too many commands without mail, closing connection")

# --- SMTP: recipients and delivery ----------------------------------------------------
UNKNOWN_USER = Reply(550, "5.1.1", "<{address}>: Recipient address rejected: User unknown")
RELAY_DENIED = Reply(554, "5.7.1", "<{address}>: Relay access denied")
# Forwarding (policy/forwarding.py): SRS bounce addresses, RFC 5321 §6.3 loops.
SRS_INVALID = Reply(550, "5.1.1", "<{address}>: Recipient address rejected: invalid or expired bounce address")
SRS_BOUNCES_ONLY = Reply(550, "5.7.1", "<{address}>: Recipient address rejected: this bounce address accepts only delivery status notifications")
TOO_MANY_HOPS = Reply(554, "5.4.6", "Too many hops: {hops} Received fields (a mail loop?)")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
SIZE_DECLARED_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
MESSAGE_INCOMPLETE = Reply(451, "4.3.0", "Message was not stored; please try again")
STORE_UNAVAILABLE = Reply(451, "4.3.0", "Temporary local problem; please try again later")
DATA_LINE_TOO_LONG = Reply(552, "5.6.0", "Message has an over-long line (header lines: 998 characters)")
BARE_NEWLINE = Reply(554, "5.6.0", "Message has bare LF or CR line ends; send CRLF (RFC 5321 2.3.8)")

# --- SMTP: anti-spam (wording as Postfix, which customers and other admins recognise) ---
DNSBL_LISTED = Reply(554, "5.7.1", "Service unavailable; Client host [{ip}] blocked using {listing}")
DNSBL_TEMPFAIL = Reply(450, "4.7.1", "Service unavailable; Client host [{ip}] could not be checked; try again later")
NO_PTR = Reply(550, "5.7.25", "Client host rejected: cannot find your hostname, [{ip}]")
NO_PTR_TEMPORARY = Reply(450, "4.7.25", "Client host rejected: cannot find your hostname, [{ip}]")
LOCALLY_BLOCKED = Reply(554, "5.7.1", "Service unavailable; Client host [{ip}] blocked by local policy; {reason}")
# Message authentication at the end of DATA (policy/dmarc.py, RFC 7489 §6.7, RFC 7372 §3.3).
DMARC_REJECT = Reply(550, "5.7.1", "Message rejected: it fails the DMARC policy of {domain} (p={policy})")
AUTHENTICATION_TEMPFAIL = Reply(451, "4.7.5", "Message authentication (SPF/DKIM/DMARC) could not be checked; try again later")
# rspamd's verdict (policy/spam_scan.py): its own text and symbols stay in the rejection log.
SPAM_REJECT = Reply(550, "5.7.1", "Message rejected: it looks like spam")
# A recipient's Sieve reject/ereject at DATA time (RFC 5429 §2.1, §2.2): the script's reason,
# made printable and short by delivery/sieve_delivery.py.
SIEVE_REJECT = Reply(550, "5.7.1", "<{address}>: Message rejected by the recipient: {reason}")
SPAM_TEMPFAIL = Reply(451, "4.7.1", "Message deferred by the content filter; try again later")
# A submitted message rspamd scored too high (policy/spam_outbound.py): the customer sees it.
SPAM_OUTBOUND_REJECT = Reply(550, "5.7.1", "Message not sent: our content filter takes it for spam; if it is not, tell support the reference")

# --- SMTP: authentication -----------------------------------------------------------------
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_MALFORMED = Reply(501, "5.5.2", "Cannot decode response")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_MECHANISM_UNKNOWN = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_TEMPORARY = Reply(454, "4.7.0", "Temporary authentication failure")
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
POP_BEFORE_SMTP_ENDED = Reply(
    530, "5.7.0", "Authentication required: sending after a POP login (POP before SMTP) has "
    "ended; turn on SMTP authentication in your mail program, see {url}")
SENDER_NOT_OWNED = Reply(553, "5.7.1", "<{address}>: Sender address rejected: not owned by user {user}")
OP25B = Reply(554, "5.7.1", "Sending on port 25 is blocked for customer networks: use port 587 "
              "(STARTTLS) or 465 (SSL/TLS) with authentication, see {url}")
MAILBOX_FULL = Reply(452, "4.2.2", "<{address}>: Mailbox full: the recipient's mailbox has no room for this message")
MESSAGE_OVER_QUOTA = Reply(552, "5.2.2", "Mailbox full: this message is larger than the room left in the recipient's mailbox")
RATE_LIMITED = Reply(451, "4.7.1", "Too many recipients this hour; try again later")
ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)


@dataclass(frozen=True)
class CodedReply:
    """A POP3 or IMAP status text, with a response code in brackets when it has one.

    POP3 sends it as ``-ERR [RESP-CODE] text`` (RFC 2449 §8, RFC 3206), IMAP after ``NO``,
    ``BAD`` or ``* BYE`` as ``[CODE] text`` (RFC 3501 §7.1, RFC 5530): the same shape, so
    one type; the constants below say by their prefix which protocol sends them.
    """

    code: str | None
    text: str

    def imap(self) -> bytes:
        """``[CODE] text``: what follows NO, BAD or ``* BYE``."""
        code = f"[{self.code}] " if self.code else ""
        return f"{code}{self.text}".encode("utf-8")

    def pop3(self) -> bytes:
        """``-ERR [RESP-CODE] text``."""
        return b"-ERR " + self.imap()


# --- POP3 ---------------------------------------------------------------------------------
POP_AUTH_FAILED = CodedReply("AUTH", "Authentication failed")
POP_IN_USE = CodedReply("IN-USE", "Mailbox is locked by another session")
POP_SYS_TEMP = CodedReply("SYS/TEMP", "Temporary server problem; try again later")
POP_SYS_PERM = CodedReply("SYS/PERM", "Account unavailable")
POP_LINE_TOO_LONG = CodedReply(None, "Line too long")
POP_BAD_COMMAND = CodedReply(None, "Unknown command")
POP_BAD_ARGUMENT = CodedReply(None, "Bad argument")
POP_NO_SUCH_MESSAGE = CodedReply(None, "No such message")
POP_DELETED = CodedReply(None, "Message is deleted")
POP_NOT_NOW = CodedReply(None, "Command not valid in this state")
POP_NEED_USER = CodedReply(None, "Send USER first")
POP_TLS_REQUIRED = CodedReply("AUTH", "Plaintext login is disabled: use STLS first, or port 995 with SSL/TLS")
POP_TLS_ALREADY = CodedReply(None, "TLS is already active")
POP_NO_APOP = CodedReply(None, "APOP is not supported; use USER/PASS or AUTH PLAIN over TLS")
POP_BAD_BASE64 = CodedReply(None, "Invalid base64 in the SASL response")
POP_AUTH_CANCELLED = CodedReply(None, "Authentication cancelled")
POP_UNKNOWN_MECHANISM = CodedReply(None, "Unsupported SASL mechanism")
POP_NOT_UTF8 = CodedReply(None, "Command is not valid UTF-8")
POP_TIMEOUT = CodedReply(None, "Idle timeout, closing connection")
POP_LOGIN_TIMEOUT = CodedReply(None, "No login in time, closing connection")
POP_TOO_MANY_FROM_YOU = CodedReply("SYS/TEMP", "Too many connections from your address, try again later")
POP_TOO_MANY_CONNECTIONS = CodedReply("SYS/TEMP", "Too many connections, try again later")
POP_TOO_MANY_FOR_ACCOUNT = CodedReply("IN-USE", "Too many connections for this account, try again later")

# --- IMAP ---------------------------------------------------------------------------------
IMAP_AUTH_FAILED = CodedReply("AUTHENTICATIONFAILED", "Authentication failed")
IMAP_UNAVAILABLE = CodedReply("UNAVAILABLE", "Temporary server problem; try again later")
IMAP_SERVER_BUG = CodedReply("SERVERBUG", "Internal error; the command was not completed")
IMAP_TOO_BIG = CodedReply("TOOBIG", "Message exceeds the size limit")
IMAP_OVER_QUOTA = CodedReply("OVERQUOTA", "Mailbox full: over the quota")
IMAP_TOO_MANY_FROM_YOU = CodedReply("UNAVAILABLE", "Too many connections from your address, try again later")
IMAP_TOO_MANY_CONNECTIONS = CodedReply("UNAVAILABLE", "Too many connections, try again later")
IMAP_TOO_MANY_FOR_ACCOUNT = CodedReply("LIMIT", "Too many connections for this account, try again later")
IMAP_TOO_SLOW = CodedReply("LIMIT", "Literal data arriving too slowly")
IMAP_SYNTAX = CodedReply(None, "Syntax error in the command arguments")
IMAP_BAD_MAILBOX_NAME = CodedReply("CANNOT", "Mailbox names must be modified UTF-7 (RFC 3501 5.1.3)")
IMAP_NOT_ALLOWED = CodedReply(None, "Command not allowed here")

# --- ManageSieve (RFC 5804 §1.3: ``NO (CODE) "text"``) ------------------------------------
SIEVE_AUTH_FAILED = CodedReply(None, "Authentication failed")
SIEVE_AUTH_CANCELLED = CodedReply(None, "Authentication cancelled")
SIEVE_BAD_BASE64 = CodedReply(None, "Invalid base64 in the SASL response")
SIEVE_UNKNOWN_MECHANISM = CodedReply(None, "Unsupported SASL mechanism")
SIEVE_TLS_REQUIRED = CodedReply("ENCRYPT-NEEDED", "Use STARTTLS before authenticating")
SIEVE_TLS_ALREADY = CodedReply(None, "TLS is already active")
SIEVE_NO_STARTTLS = CodedReply(None, "STARTTLS is not available here")
SIEVE_TRY_LATER = CodedReply("TRYLATER", "Temporary server problem; try again later")
SIEVE_TOO_MANY_FOR_ACCOUNT = CodedReply("TRYLATER", "Too many connections for this account, try again later")
SIEVE_TOO_MANY_FROM_YOU = CodedReply("TRYLATER", "Too many connections from your address, try again later")
SIEVE_TOO_MANY_CONNECTIONS = CodedReply("TRYLATER", "Too many connections, try again later")
SIEVE_UNKNOWN_COMMAND = CodedReply(None, "Unknown command")
SIEVE_NOT_NOW = CodedReply(None, "Command not valid in this state")
SIEVE_SYNTAX = CodedReply(None, "Syntax error in the command arguments")
SIEVE_LINE_TOO_LONG = CodedReply(None, "Command too long")
SIEVE_LITERAL_TOO_LONG = CodedReply(None, "String too long")
SIEVE_BAD_NAME = CodedReply(None, "Invalid script name")
SIEVE_NONEXISTENT = CodedReply("NONEXISTENT", "There is no script by that name")
SIEVE_ALREADY_EXISTS = CodedReply("ALREADYEXISTS", "A script by that name already exists")
SIEVE_ACTIVE = CodedReply("ACTIVE", "The active script cannot be deleted")
SIEVE_TOO_BIG = CodedReply("QUOTA/MAXSIZE", "Script exceeds the size limit")
SIEVE_TOO_MANY = CodedReply("QUOTA/MAXSCRIPTS", "Too many scripts")
SIEVE_TIMEOUT = CodedReply(None, "Idle timeout, closing connection")
SIEVE_LOGIN_TIMEOUT = CodedReply(None, "No login in time, closing connection")
