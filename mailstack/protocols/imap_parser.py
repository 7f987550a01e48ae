"""``parse_command``: one complete IMAP command, literals inline, into an ``imap_commands``
object; the entry point of our own IMAP grammar.

Why ours: Twisted's IMAP4Server parser accepts ``{+60000000}`` and ``{-1}``, is quadratic
on sequence sets and recurses without bound (TWISTED-NOTES, issue 12).  The framing layer
gathers a command (its literals announced as ``{N}`` or ``{N+}`` before a CRLF, their
octets after it) and hands it over without the final CRLF; this module reads the tag,
the command name (``UID`` and its command), and leaves the arguments to the grammar
modules: ``imap_folder_grammar`` (mailboxes), ``imap_message_grammar`` (messages),
``imap_search_grammar`` and ``imap_fetch_items``, all on ``imap_tokens.Reader``.

The tag is read first, so every later ``ParseError`` carries it (``error.tag``; None only
when the tag itself is unreadable: answer ``* BAD``).  ``BadCharset`` (``NO
[BADCHARSET]``) and ``BadMailboxName`` (``NO [CANNOT]``) are ParseErrors too: catch them
first.  Command states (which command is allowed when) are the session's business.

Standards: RFC 3501 §6 and §9 (tag, command), RFC 9051 §9, RFC 4959 (SASL-IR), RFC 2971
(ID), RFC 5161 (ENABLE), RFC 3691 (UNSELECT), RFC 2342 (NAMESPACE), RFC 2177 (IDLE).
Security: linear time in the command's length; no recursion but SEARCH's, bounded;
ID keeps at most ``MAX_ID_PAIRS`` pairs, each clipped, so a client's ID costs bounded
memory whatever it sends.
"""

from __future__ import annotations

import re
from functools import partial

from mailstack.protocols import imap_folder_grammar as folders
from mailstack.protocols import imap_message_grammar as messages
from mailstack.protocols.imap_commands import Authenticate, Command, Enable, Expunge, Id, Login
from mailstack.protocols.imap_tokens import ATOM, TAG, ParseError, Reader

MAX_ID_PAIRS = 30       # RFC 2971 §3.3: at most 30 pairs,
MAX_ID_FIELD = 30       # fields of at most 30 octets,
MAX_ID_VALUE = 1024     # values of at most 1024; longer ones are clipped, not refused
NO_ARGUMENTS = frozenset({"CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "CHECK", "CLOSE",
                          "UNSELECT", "IDLE", "NAMESPACE"})
_BASE64 = re.compile(rb"(?:[A-Za-z0-9+/]{4})*+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def parse_command(raw: bytes, spooled: dict | None = None) -> Command:
    """The command in ``raw`` (no final CRLF); ParseError with ``.tag`` if malformed.
    ``spooled``: literals the framing put in a sink (``imap_framing.Command``)."""
    found = TAG.match(raw)
    if not found or raw[found.end():found.end() + 1] not in (b" ", b""):
        raise ParseError("Bad tag")
    tag = found.group()
    try:
        reader = Reader(raw, found.end(), spooled)
        reader.expect(b" ", "Missing command")
        return _command(reader, tag)
    except ParseError as error:
        error.tag = tag
        raise


def _command(reader: Reader, tag: bytes) -> Command:
    name = reader.match(ATOM, "Missing command").group().upper().decode("ascii")
    if name == "UID":
        reader.expect(b" ", "Missing command after UID")
        name = reader.match(ATOM, "Missing command after UID").group().upper().decode("ascii")
        if name not in UID_COMMANDS:
            raise ParseError("Unknown command")
        _arguments_follow(reader)
        return UID_COMMANDS[name](reader, tag, name, uid=True)
    if name in NO_ARGUMENTS or name == "EXPUNGE":
        reader.end()
        return Expunge(tag=tag, name=name) if name == "EXPUNGE" else Command(tag=tag, name=name)
    if name not in COMMANDS:
        raise ParseError("Unknown command")
    _arguments_follow(reader)
    return COMMANDS[name](reader, tag, name)


def _arguments_follow(reader: Reader) -> None:
    if not reader.more():
        raise ParseError("Missing arguments")


# --- the session commands with arguments ---------------------------------------------------------

def login(reader: Reader, tag: bytes, name: str) -> Login:
    user = reader.astring()
    reader.sp()
    password = reader.astring()
    reader.end()
    return Login(tag=tag, name=name, user=user, password=password)


def authenticate(reader: Reader, tag: bytes, name: str) -> Authenticate:
    """``AUTHENTICATE mechanism [SP (base64 / "=")]`` (RFC 4959)."""
    mechanism = reader.word()
    initial = None
    if reader.more():
        initial = b"" if reader.skip(b"=") else reader.match(_BASE64, "Bad base64").group()
        if initial == b"" and reader.raw[reader.pos - 1:reader.pos] != b"=":
            raise ParseError("Bad base64")
    reader.end()
    return Authenticate(tag=tag, name=name, mechanism=mechanism, initial=initial)


def id_command(reader: Reader, tag: bytes, name: str) -> Id:
    """``ID ("field" "value" ...)`` or ``ID NIL`` (RFC 2971 §3.3)."""
    if reader.match_nil():
        reader.end()
        return Id(tag=tag, name=name, params=None)
    reader.expect(b"(", "Expected ( or NIL")
    pairs: list[tuple[bytes, bytes | None]] = []
    closed = reader.skip(b")")
    while not closed:
        field = reader.string()
        reader.sp()
        value = reader.nstring()
        if len(pairs) < MAX_ID_PAIRS:
            pairs.append((field[:MAX_ID_FIELD], None if value is None else value[:MAX_ID_VALUE]))
        closed = reader.skip(b")")
        if not closed:
            reader.sp()
    reader.end()
    return Id(tag=tag, name=name, params=tuple(pairs))


def enable(reader: Reader, tag: bytes, name: str) -> Enable:
    capabilities = [reader.word()]
    while reader.more():
        capabilities.append(reader.word())
    reader.end()
    return Enable(tag=tag, name=name, capabilities=tuple(capabilities))


COMMANDS = {
    "LOGIN": login, "AUTHENTICATE": authenticate, "ID": id_command, "ENABLE": enable,
    "SELECT": folders.select, "EXAMINE": folders.select, "CREATE": folders.create,
    "DELETE": folders.one_mailbox, "SUBSCRIBE": folders.one_mailbox,
    "UNSUBSCRIBE": folders.one_mailbox, "GETQUOTAROOT": folders.one_mailbox,
    "RENAME": folders.rename, "STATUS": folders.status, "LIST": folders.list_mailboxes,
    "LSUB": folders.lsub, "GETQUOTA": folders.get_quota, "SETQUOTA": folders.set_quota,
    "APPEND": messages.append, "FETCH": partial(messages.fetch, uid=False),
    "STORE": partial(messages.store, uid=False),
    "COPY": partial(messages.copy_messages, uid=False),
    "MOVE": partial(messages.copy_messages, uid=False),
    "SEARCH": partial(messages.search, uid=False),
}
UID_COMMANDS = {"FETCH": messages.fetch, "STORE": messages.store, "SEARCH": messages.search,
                "COPY": messages.copy_messages, "MOVE": messages.copy_messages,
                "EXPUNGE": messages.uid_expunge}
