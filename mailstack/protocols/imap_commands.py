"""What a parsed IMAP command is: one frozen dataclass per shape of arguments.

Why a module of its own: the grammar modules build these and the session code consumes
them; neither should need the other's internals.  Every command carries its ``tag``
(bytes, as sent) and its upper-case ``name`` (``"FETCH"`` also for ``UID FETCH``, whose
``uid`` is then True); commands without arguments are plain ``Command`` objects, except
EXPUNGE, an ``Expunge`` like UID EXPUNGE.  Mailbox names are ``str``, decoded from
modified UTF-7, ``INBOX`` in any case spelled ``"INBOX"``; where an answer echoes the
name (STATUS, GETQUOTAROOT) the bytes as sent are kept in ``raw_mailbox`` as well.

Standards: RFC 3501 §6 (commands), RFC 9051 §6; extensions as named on each class.
Security: shapes only; every value was checked by the grammar that built it.  The
password of LOGIN and the SASL response of AUTHENTICATE are left out of the objects'
``repr``, so a command in a log line or a traceback never shows them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from mailstack.protocols.imap_fetch_items import FetchItem
from mailstack.protocols.imap_sequence import SequenceSet


@dataclass(frozen=True, kw_only=True)
class Command:
    """CAPABILITY NOOP LOGOUT STARTTLS CHECK CLOSE UNSELECT IDLE NAMESPACE; every other
    command adds its arguments."""

    tag: bytes
    name: str


@dataclass(frozen=True, kw_only=True)
class Login(Command):
    user: bytes
    password: bytes = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class Authenticate(Command):
    """``mechanism`` upper-case; ``initial`` the RFC 4959 SASL-IR initial response as
    base64 text (validated, not decoded), ``b""`` for ``=`` (an empty response), None
    when the client sent none."""

    mechanism: str
    initial: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class MailboxCommand(Command):
    """DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT (RFC 9208)."""

    mailbox: str
    raw_mailbox: bytes


@dataclass(frozen=True, kw_only=True)
class QResync:
    """RFC 7162 §3.2.5: what the client knew of the mailbox when it last had it."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    seq_match: tuple[SequenceSet, SequenceSet] | None = None     # (seqs, their UIDs)


@dataclass(frozen=True, kw_only=True)
class Select(Command):
    """SELECT or EXAMINE (``read_only``); ``params`` upper-case atoms such as
    ``("CONDSTORE",)`` (RFC 4466 syntax, RFC 7162), for the session to accept or refuse;
    ``qresync`` the QRESYNC parameter's values."""

    mailbox: str
    read_only: bool
    params: tuple[str, ...] = ()
    qresync: QResync | None = None


@dataclass(frozen=True, kw_only=True)
class Create(Command):
    """RFC 6154 CREATE-SPECIAL-USE: ``use`` the attributes as sent, ``("\\\\Drafts",)``."""

    mailbox: str
    use: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Rename(Command):
    old: str
    new: str


@dataclass(frozen=True, kw_only=True)
class Status(Command):
    """``items`` upper-case, in the client's order: MESSAGES RECENT UIDNEXT UIDVALIDITY
    UNSEEN SIZE (RFC 8438) DELETED DELETED-STORAGE (RFC 9051, RFC 9208)."""

    mailbox: str
    raw_mailbox: bytes
    items: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ListMailboxes(Command):
    """LIST (RFC 3501, RFC 5258 syntax, RFC 6154).

    ``reference`` and ``patterns`` decoded from modified UTF-7, not otherwise changed
    (matching INBOX case-insensitively is the matcher's work).  ``selection`` and
    ``returns`` are upper-case options; ``extended`` says the RFC 5258 form was used
    (selection options, a pattern list or RETURN), in which ``""`` is not special.
    """

    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    extended: bool = False


@dataclass(frozen=True, kw_only=True)
class Lsub(Command):
    """LSUB reference pattern, both decoded from modified UTF-7."""

    reference: str
    pattern: str


@dataclass(frozen=True, kw_only=True)
class GetQuota(Command):
    root: bytes


@dataclass(frozen=True, kw_only=True)
class SetQuota(Command):
    """RFC 9208: ``limits`` as ((resource upper-case, limit), ...)."""

    root: bytes
    limits: tuple[tuple[str, int], ...]


@dataclass(frozen=True, kw_only=True)
class Append(Command):
    """``flags``: system flags in their RFC spelling (``\\\\Seen``), keywords as sent;
    ``date`` the internal date asked for, timezone-aware, or None; ``message`` the
    literal's bytes, or the ``message/spool.Spool`` holding a large one."""

    mailbox: str
    flags: tuple[str, ...]
    date: datetime | None
    message: object


@dataclass(frozen=True, kw_only=True)
class Fetch(Command):
    """``items`` with the macros ALL/FAST/FULL expanded; ``changed_since`` and
    ``vanished`` RFC 7162 §3.1.4, §3.2.6."""

    uid: bool = False
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None
    vanished: bool = False


@dataclass(frozen=True, kw_only=True)
class Store(Command):
    """``mode``: "=" (FLAGS), "+" (+FLAGS) or "-" (-FLAGS), as ``imap_store.update_flags``
    takes it; ``silent`` for .SILENT; ``flags`` as in Append; ``unchanged_since`` RFC 7162."""

    uid: bool = False
    sequence: SequenceSet
    mode: str
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None = None


@dataclass(frozen=True, kw_only=True)
class CopyMessages(Command):
    """COPY or MOVE (RFC 6851), with or without UID."""

    uid: bool = False
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, kw_only=True)
class Search(Command):
    """``charset`` upper-case or None; ``criteria`` a ``store.search_criteria`` tree that
    may hold ``imap_search_grammar.Recent`` nodes (see ``resolve_recent``)."""

    uid: bool = False
    charset: str | None
    criteria: object
    returns: tuple[str, ...] | None = None    # ESEARCH's RETURN options (RFC 4731); None: SEARCH


@dataclass(frozen=True, kw_only=True)
class Expunge(Command):
    """EXPUNGE (``sequence`` None) or RFC 4315 UID EXPUNGE (``uid``, ``sequence`` UIDs)."""

    uid: bool = False
    sequence: SequenceSet | None = None


@dataclass(frozen=True, kw_only=True)
class Id(Command):
    """RFC 2971: ((field, value or None), ...) as bytes, or None for ``ID NIL``."""

    params: tuple[tuple[bytes, bytes | None], ...] | None


@dataclass(frozen=True, kw_only=True)
class Enable(Command):
    """RFC 5161: the capabilities asked for, upper-case."""

    capabilities: tuple[str, ...]
