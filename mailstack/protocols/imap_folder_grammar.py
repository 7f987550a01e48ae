"""Arguments of the IMAP commands on mailboxes: SELECT/EXAMINE, CREATE, DELETE, RENAME,
SUBSCRIBE/UNSUBSCRIBE, STATUS, LIST/LSUB, and the QUOTA commands.

Why: each reads its arguments from an ``imap_tokens.Reader`` standing after the command
name and its space, and returns an ``imap_commands`` object or raises ParseError.
Mailbox names are decoded from modified UTF-7 here (``imap_utf7.BadMailboxName`` if they
do not decode), so the session only ever sees ``str`` names, and ``INBOX`` in any case is
``"INBOX"``; LIST patterns and references that do not decode are taken as sent.

LIST accepts the RFC 5258 form (``LIST (SUBSCRIBED) "" (a b) RETURN (CHILDREN)``) because
SPECIAL-USE clients send it (RFC 6154); unknown options are BAD, as RFC 5258 §3 asks, and
RECURSIVEMATCH needs a base option.  A pattern is ``1*list-char / string``: an atom may
hold ``%``, ``*`` and ``]``; ``NIL`` is such an atom, the pattern "NIL" (RFC 3501 §9;
Dovecot's imaptest ``nil`` expects ``LIST "" NIL`` to be answered OK).

Standards: RFC 3501 §6.3, RFC 5258 §3, RFC 6154 §3 and §5, RFC 9208 §4, RFC 8438 (STATUS
SIZE), RFC 9051 §6.3.11 (STATUS DELETED), RFC 4466 (SELECT parameters), RFC 7162
(CONDSTORE and QRESYNC parameters, STATUS HIGHESTMODSEQ).
Security: mailbox names are refused unless they decode; option lists are one level deep.
"""

from __future__ import annotations

from mailstack.protocols import imap_utf7
from mailstack.protocols.imap_commands import (
    Create, GetQuota, ListMailboxes, Lsub, MailboxCommand, QResync, Rename, Select, SetQuota,
    Status,
)
from mailstack.protocols.imap_sequence import SET_CHARS, SequenceSet
from mailstack.protocols.imap_tokens import ParseError, Reader

STATUS_ITEMS = frozenset({"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE",
                          "DELETED", "DELETED-STORAGE", "HIGHESTMODSEQ"})
LIST_SELECTION = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
LIST_BASE_SELECTION = frozenset({"SUBSCRIBED", "SPECIAL-USE"})
LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})


def mailbox(reader: Reader) -> str:
    return mailbox_name(reader.astring())


def mailbox_name(raw: bytes) -> str:
    """``raw`` decoded from modified UTF-7; ``INBOX`` in any case is ``"INBOX"``."""
    name = imap_utf7.decode(raw)
    return "INBOX" if name.upper() == "INBOX" else name


def select(reader: Reader, tag: bytes, name: str) -> Select:
    """``SELECT mailbox [SP "(" param *(SP param) ")"]`` (RFC 4466): CONDSTORE, or
    ``QRESYNC (uidvalidity modseq [known-uids [(seq-match)]])`` (RFC 7162 §3.2.5)."""
    box = mailbox(reader)
    found = {"params": [], "qresync": None}

    def param():
        word = reader.word()
        found["params"].append(word)
        if word == "QRESYNC":
            if found["qresync"] is not None:
                raise ParseError("QRESYNC given twice")
            reader.sp()
            found["qresync"] = qresync_param(reader)
        return word
    if reader.more():
        reader.items(param)
    reader.end()
    return Select(tag=tag, name=name, mailbox=box, read_only=name == "EXAMINE",
                  params=tuple(found["params"]), qresync=found["qresync"])


def sequence_set(reader: Reader) -> SequenceSet:
    return SequenceSet.parse(reader.match(SET_CHARS, "Expected a sequence set").group())


def qresync_param(reader: Reader) -> QResync:
    """``(uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data])``."""
    reader.expect(b"(", "Expected ( after QRESYNC")
    uidvalidity = reader.nz_number()
    reader.sp()
    modseq = reader.number64()
    if modseq < 1:
        raise ParseError("Bad mod-sequence")
    known = seq_match = None
    if reader.skip(b" ") and reader.peek() != b"(":
        known = sequence_set(reader)
        reader.skip(b" ")
    if reader.peek() == b"(":
        reader.expect(b"(", "Expected (")
        sequences = sequence_set(reader)
        reader.sp()
        uids = sequence_set(reader)
        reader.expect(b")", "Expected ) after seq-match-data")
        seq_match = (sequences, uids)
    reader.expect(b")", "Expected ) after QRESYNC parameters")
    return QResync(uidvalidity=uidvalidity, modseq=modseq, known_uids=known,
                   seq_match=seq_match)


def create(reader: Reader, tag: bytes, name: str) -> Create:
    """``CREATE mailbox [SP "(" "USE" SP "(" [use-attr *(SP use-attr)] ")" ")"]``."""
    box = mailbox(reader)
    uses: tuple[str, ...] = ()
    if reader.more():
        reader.expect(b"(", "Expected ( before CREATE parameters")
        if reader.word() != "USE":
            raise ParseError("Unknown CREATE parameter")
        reader.sp()
        uses = tuple(reader.items(lambda: _use_attribute(reader), allow_empty=True))
        reader.expect(b")", "Expected ) after CREATE parameters")
    reader.end()
    return Create(tag=tag, name=name, mailbox=box, use=uses)


def _use_attribute(reader: Reader) -> str:
    reader.expect(b"\\", "Expected a special-use attribute")
    return "\\" + reader.atom().decode("ascii")


def one_mailbox(reader: Reader, tag: bytes, name: str) -> MailboxCommand:
    raw = reader.astring()
    reader.end()
    return MailboxCommand(tag=tag, name=name, mailbox=mailbox_name(raw), raw_mailbox=raw)


def rename(reader: Reader, tag: bytes, name: str) -> Rename:
    old = mailbox(reader)
    reader.sp()
    new = mailbox(reader)
    reader.end()
    return Rename(tag=tag, name=name, old=old, new=new)


def status(reader: Reader, tag: bytes, name: str) -> Status:
    raw = reader.astring()
    box = mailbox_name(raw)
    reader.sp()
    items = tuple(reader.items(lambda: _status_item(reader)))
    reader.end()
    return Status(tag=tag, name=name, mailbox=box, raw_mailbox=raw, items=items)


def _status_item(reader: Reader) -> str:
    word = reader.word()
    if word not in STATUS_ITEMS:
        raise ParseError("Unknown STATUS item")
    return word


def lsub(reader: Reader, tag: bytes, name: str) -> Lsub:
    reference = _reference(reader)
    reader.sp()
    pattern = _pattern(reader)
    reader.end()
    return Lsub(tag=tag, name=name, reference=reference, pattern=pattern)


def list_mailboxes(reader: Reader, tag: bytes, name: str) -> ListMailboxes:
    """``LIST [SP "(" opts ")"] SP mailbox SP (list-mailbox / "(" patterns ")")
    [SP RETURN SP "(" opts ")"]`` (RFC 5258 §3)."""
    selection = ()
    extended = reader.peek() == b"("
    if extended:
        selection = _options(reader, LIST_SELECTION)
        if "RECURSIVEMATCH" in selection and not LIST_BASE_SELECTION & set(selection):
            raise ParseError("RECURSIVEMATCH needs another selection option")
        reader.sp()
    reference = _reference(reader)
    reader.sp()
    if reader.peek() == b"(":
        extended = True
        patterns = tuple(reader.items(lambda: _pattern(reader)))
    else:
        patterns = (_pattern(reader),)
    returns = ()
    if reader.more():
        if reader.word() != "RETURN":
            raise ParseError("Expected RETURN")
        reader.sp()
        returns, extended = _options(reader, LIST_RETURN), True
    reader.end()
    return ListMailboxes(tag=tag, name=name, reference=reference, patterns=patterns,
                         selection=selection, returns=returns, extended=extended)


def _options(reader: Reader, known: frozenset) -> tuple[str, ...]:
    words = tuple(reader.items(reader.word, allow_empty=True))
    if not known.issuperset(words):
        raise ParseError("Unknown LIST option")
    return words


def _reference(reader: Reader) -> str:
    return _pattern_text(reader.astring())


def _pattern(reader: Reader) -> str:
    return _pattern_text(reader.list_mailbox())


def _pattern_text(raw: bytes) -> str:
    """A LIST reference or pattern: decoded if it is modified UTF-7, else its text as sent.

    A pattern need not name a mailbox, so one that does not decode is no error (Dovecot's
    imaptest ``atoms`` lists ``!#$&'+,...``); it only matches names with those characters.
    """
    try:
        return imap_utf7.decode(raw)
    except imap_utf7.BadMailboxName:
        return raw.decode("utf-8", "replace")


def get_quota(reader: Reader, tag: bytes, name: str) -> GetQuota:
    root = reader.astring()
    reader.end()
    return GetQuota(tag=tag, name=name, root=root)


def set_quota(reader: Reader, tag: bytes, name: str) -> SetQuota:
    """``SETQUOTA root SP "(" [resource SP number64 *(SP resource SP number64)] ")"``."""
    root = reader.astring()
    reader.sp()
    limits = tuple(reader.items(lambda: _quota_limit(reader), allow_empty=True))
    reader.end()
    return SetQuota(tag=tag, name=name, root=root, limits=limits)


def _quota_limit(reader: Reader) -> tuple[str, int]:
    resource = reader.word()
    reader.sp()
    return resource, reader.number64()

