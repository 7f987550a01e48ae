"""The account and mailbox adapters between Twisted's IMAP server and our store.

Why snapshots: Twisted asks a mailbox for counts, UIDs and flags synchronously, so a
SELECT loads the folder's message list once (one query) and every later command keeps that
list current; new mail shows up at the next NOOP/CHECK (RFC 3501 §6.1.2).  Every change
(APPEND, STORE, COPY, EXPUNGE, CREATE, DELETE, RENAME, SUBSCRIBE) is one transaction in the
thread pool, and the protocol answers OK only from its callback.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import replace

from twisted.internet import defer
from twisted.mail import imap4
from zope.interface import implementer

from mailstack import clock as clocks
from mailstack.protocols import imap_search
from mailstack.protocols.imap_message import StoredMessage
from mailstack.store import imap_store, mailboxes, message_search

DELIMITER = "/"
PERMANENT_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\*")
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def folder_name(name: str) -> str:
    name = name.strip(DELIMITER)
    return mailboxes.INBOX if name.upper() == mailboxes.INBOX else name


class ListEntry:
    """One LIST/LSUB line: attributes and delimiter (not a Mailbox: no flags confusion)."""

    def __init__(self, attributes):
        self.attributes = attributes

    def getFlags(self):
        return self.attributes

    def getHierarchicalDelimiter(self):
        return DELIMITER


def _pattern(ref: str, wildcard: str):
    text = (ref or "") + (wildcard or "")
    regex = "".join(".*" if c == "*" else f"[^{DELIMITER}]*" if c == "%" else re.escape(c)
                    for c in text)
    return re.compile(f"^{regex}$", re.IGNORECASE if text.upper().startswith("INBOX") else 0)


@implementer(imap4.IAccount, imap4.INamespacePresenter)
class Account:
    def __init__(self, parts, ref):
        self.parts, self.ref, self.db = parts, ref, parts.db
        self.subscribed: set[str] = set()

    # Twisted calls isSubscribed synchronously after listMailboxes: it reads this cache.
    def isSubscribed(self, name):
        return folder_name(name) in self.subscribed

    @defer.inlineCallbacks
    def listMailboxes(self, ref, wildcard):
        folders = yield self.db.read(mailboxes.list_folders, self.ref.id)
        self.subscribed = {f.name for f in folders if f.subscribed}
        names = {f.name for f in folders}
        pattern = _pattern(ref, wildcard)
        result = []
        for f in sorted(folders, key=lambda f: (f.name != mailboxes.INBOX, f.name)):
            if not pattern.match(f.name):
                continue
            children = any(n.startswith(f.name + DELIMITER) for n in names)
            attributes = ["\\HasChildren" if children else "\\HasNoChildren"]
            if f.special_use:
                attributes.append(f.special_use)
            result.append((f.name, ListEntry(attributes)))
        return result

    @defer.inlineCallbacks
    def select(self, name, rw=True):
        found = yield self.db.read(imap_store.open_folder, self.ref.id, folder_name(name))
        if found is None:
            return None
        folder, infos = found
        return Mailbox(self, folder, infos, bool(rw))

    def create(self, name, special_use=None):
        name = folder_name(name)
        if not name or name == mailboxes.INBOX:
            return defer.succeed(False)
        return self.db.run(imap_store.create_with_parents, self.ref.id, name,
                           clocks.now(self.parts.clock), DELIMITER, special_use)

    def status(self, name, items):
        """The STATUS counts, or None for no such folder: aggregates, not a snapshot."""
        return self.db.read(imap_store.status, self.ref.id, folder_name(name), items)

    def quota(self):
        """(bytes used, quota in bytes or None) over all the account's folders."""
        return self.db.read(imap_store.quota, self.ref.id)

    def delete(self, name):
        return self.db.run(imap_store.delete_folder, self.ref.id, folder_name(name))

    def rename(self, old, new):
        return self.db.run(imap_store.rename_folder, self.ref.id, folder_name(old),
                           folder_name(new), clocks.now(self.parts.clock))

    def subscribe(self, name):
        return self.db.run(imap_store.set_subscribed, self.ref.id, folder_name(name), True)

    def unsubscribe(self, name):
        return self.db.run(imap_store.set_subscribed, self.ref.id, folder_name(name), False)

    def addMailbox(self, name, mbox=None):
        return self.create(name)

    def getPersonalNamespaces(self):
        return [[b"", DELIMITER.encode()]]

    def getSharedNamespaces(self):
        return None

    def getOtherNamespaces(self):
        return None


@implementer(imap4.IMailbox, imap4.ISearchableMailbox)
class Mailbox:
    def __init__(self, account, folder, infos, rw):
        self.account, self.folder, self.infos, self.rw = account, folder, list(infos), rw
        self.db = account.db

    # --- synchronous facts (from the snapshot) ----------------------------------------------
    def getUIDValidity(self):
        return self.folder.uidvalidity

    def getUIDNext(self):
        return max([self.folder.uidnext] + [m.uid + 1 for m in self.infos])

    def getUID(self, seq):
        return self.infos[seq - 1].uid

    def getMessageCount(self):
        return len(self.infos)

    def getRecentCount(self):
        return 0

    def getUnseenCount(self):
        return sum(1 for m in self.infos if "\\Seen" not in m.flags)

    def first_unseen(self):
        return next((i for i, m in enumerate(self.infos, 1) if "\\Seen" not in m.flags), None)

    def isWriteable(self):
        return self.rw

    def getFlags(self):
        return list(SYSTEM_FLAGS)

    def getHierarchicalDelimiter(self):
        return DELIMITER

    def addListener(self, listener):
        pass

    def removeListener(self, listener):
        pass

    # --- message sets -----------------------------------------------------------------
    def resolve(self, messages, uid):
        """[(seq, MessageInfo)] for a MessageSet, with ``*`` as the last UID/number."""
        if not self.infos:
            return []
        last = self.infos[-1].uid if uid else len(self.infos)
        ranges = []
        for low, high in messages.ranges:
            low = last if low is None else low
            high = last if high is None else high
            ranges.append((min(low, high), max(low, high)))
        return [(seq, m) for seq, m in enumerate(self.infos, 1)
                if any(lo <= (m.uid if uid else seq) <= hi for lo, hi in ranges)]

    @defer.inlineCallbacks
    def refresh(self):
        """Catch up with other sessions: (expunged seqs, new count, seqs whose flags changed).

        Reads only what changed since the folder's modseq we hold (store/imap_store.py).
        """
        last_uid = self.infos[-1].uid if self.infos else 0
        found = yield self.db.read(imap_store.changes_since, self.account.ref.id, self.folder.id,
                                   self.folder.modseq, len(self.infos), last_uid)
        if found is None:
            return [], len(self.infos), []
        self.folder, changed, alive = found
        gone = [] if alive is None else self._drop({m.id for m in self.infos} - alive)
        position = {m.id: index for index, m in enumerate(self.infos)}
        flagged = []
        for m in changed:
            index = position.get(m.id)
            if index is None:
                if m.uid > last_uid:
                    self.infos.append(m)
            elif self.infos[index].flags != m.flags:
                self.infos[index] = m
                flagged.append(index + 1)
        return gone, len(self.infos), flagged

    def flags_of(self, seq) -> list[str]:
        return sorted(self.infos[seq - 1].flags)

    # --- reading --------------------------------------------------------------------------
    @defer.inlineCallbacks
    def load(self, chosen, need_bodies=True):
        """[(seq, StoredMessage)] for resolved messages, bodies read in one query."""
        bodies = {}
        if need_bodies and chosen:
            bodies = yield self.db.read(mailboxes.get_bodies, [m.id for _, m in chosen])
        return [(seq, StoredMessage(m, bodies.get(m.id))) for seq, m in chosen]

    @defer.inlineCallbacks
    def search(self, query, uid, charset=None):
        """SEARCH runs in SQL over this session's snapshot (store/message_search.py)."""
        criteria = imap_search.parse(query, charset)    # ValueError → BAD, BadCharset → NO
        snapshot = [m.uid for m in self.infos]          # ascending: sequence order
        found = yield self.db.read(message_search.search, self.folder.id, criteria, snapshot)
        return found if uid else [bisect_left(snapshot, u) + 1 for u in found]

    # --- changing -------------------------------------------------------------------------
    @defer.inlineCallbacks
    def addMessage(self, message, flags=(), date=None):
        body = message.read() if hasattr(message, "read") else bytes(message)
        at = clocks.now(self.account.parts.clock)
        flags = mailboxes.canonical_flags(flags or ())
        info = yield self.db.run(imap_store.append, self.account.ref.id, self.folder.id, body,
                                 _internal_date(date, at), flags)
        return info.uid

    @defer.inlineCallbacks
    def store(self, messages, flags, mode, uid):
        chosen = self.resolve(messages, uid)
        flags = mailboxes.canonical_flags(flags)
        changes = {}
        for seq, m in chosen:
            new = (flags if mode == 0 else m.flags | flags if mode > 0 else m.flags - flags)
            changes[seq] = replace(m, flags=frozenset(new))
        yield self.db.run(imap_store.store_flags, self.folder.id,
                          {m.id: m.flags for m in changes.values()})
        for seq, m in changes.items():
            self.infos[seq - 1] = m
        return {seq: sorted(m.flags) for seq, m in changes.items()}

    @defer.inlineCallbacks
    def mark_seen(self, chosen):
        """FETCH BODY[] (not .PEEK) sets \\Seen (RFC 3501 §6.4.5)."""
        unseen = {seq: m for seq, m in chosen if "\\Seen" not in m.flags}
        if not unseen or not self.rw:
            return []
        changed = {seq: replace(m, flags=m.flags | {"\\Seen"}) for seq, m in unseen.items()}
        yield self.db.run(imap_store.store_flags, self.folder.id,
                          {m.id: m.flags for m in changed.values()})
        for seq, m in changed.items():
            self.infos[seq - 1] = m
        return sorted(changed)

    @defer.inlineCallbacks
    def expunge(self, chosen=None):
        """EXPUNGE, or UID EXPUNGE over ``chosen``: the sequence numbers removed."""
        only = None if chosen is None else [m.id for _, m in chosen]
        removed = set((yield self.db.run(imap_store.expunge, self.folder.id, only)))
        return self._drop(removed)

    def _drop(self, removed) -> list[int]:
        gone = [seq for seq, m in enumerate(self.infos, 1) if m.id in removed]
        self.infos = [m for m in self.infos if m.id not in removed]
        return gone

    @defer.inlineCallbacks
    def copy_to(self, chosen, target):
        """COPY: (target UIDVALIDITY, source UIDs, new UIDs) for COPYUID (RFC 4315)."""
        folder, ids, uids = yield self.db.run(imap_store.copy_messages, self.account.ref.id,
                                              [m.id for _, m in chosen], folder_name(target))
        return folder.uidvalidity, self._uids_of(ids), uids

    @defer.inlineCallbacks
    def move_to(self, chosen, target):
        """MOVE (RFC 6851): like copy_to, plus the sequence numbers expunged here."""
        folder, ids, uids = yield self.db.run(imap_store.move_messages, self.account.ref.id,
                                              self.folder.id, [m.id for _, m in chosen],
                                              folder_name(target))
        source_uids = self._uids_of(ids)
        return folder.uidvalidity, source_uids, uids, self._drop(set(ids))

    def _uids_of(self, ids) -> list[int]:
        by_id = {m.id: m.uid for m in self.infos}
        return [by_id[i] for i in ids if i in by_id]


def _internal_date(date, default):
    if not date:
        return default
    from email.utils import parsedate_to_datetime
    try:
        text = date.decode() if isinstance(date, bytes) else date
        parsed = parsedate_to_datetime(text.replace("-", " ", 2))
        return parsed if parsed.tzinfo else default
    except (TypeError, ValueError):
        return default
