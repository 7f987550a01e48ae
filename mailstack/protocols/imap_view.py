"""One session's view of its selected folder, and what it still has to tell the client.

Why a view: IMAP numbers messages by position (RFC 3501 §2.3.1.2) and those numbers may
only change when the client is told (EXPUNGE, EXISTS).  So each session keeps its own
list of the folder's messages (UID, flags), loaded at SELECT, and brings it up to date
from the store's change records (``folders.modseq``, ``messages.modseq``) only at the end
of a command, when it can announce the difference (RFC 3501 §5.2, §7.4.1).  A session is
woken (``dirty``) by ``FolderWatch`` when anyone commits to its folder, so a command
reads changes only when there are some; NOOP, CHECK and IDLE also poll (another process
on SQLite has no NOTIFY).

An expunge made elsewhere cannot be announced during FETCH, STORE or SEARCH: the message
then stays in the view (``gone``) until a command that may announce it.
``\\Recent`` (RFC 3501 §2.3.2) belongs to the first session that sees a message with the
folder selected read-write; the store hands out each UID once (``folders.recent_uid``).
With CONDSTORE and QRESYNC enabled (``imap_condstore``, RFC 7162) the view also decides
which MODSEQ a client may be told (``modseq_of``) and tells expunges as one VANISHED.

Security: a view reads the changes of its own folder only, asked with the logged-in
account's id; it holds one entry (UID, flags) per message of the folder, so its memory
grows with the folder, not with the traffic.  Not here: the size of a folder (quotas are
in bytes, not messages).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import replace

from mailstack.protocols.imap_format import uid_set
from mailstack.store import imap_store

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class FolderView:
    def __init__(self, account, folder, infos, first_recent: int | None, rw: bool):
        self.account, self.db, self.folder, self.rw = account, account.db, folder, rw
        self.infos = list(infos)
        self.uids = [m.uid for m in self.infos]
        self.recent = {u for u in self.uids if first_recent is not None and u >= first_recent}
        self.keywords = self._keywords_in(self.infos)
        # UIDs expunged elsewhere, not yet told.  UIDs, not row ids: SQLite gives the id
        # of a deleted last row to the next message stored (no AUTOINCREMENT).
        self.gone: set[int] = set()
        self.changed: set[int] = set()       # UIDs whose flags changed, not yet told
        self.exists = len(self.infos)        # what the client was last told
        self.told_recent = len(self.recent)
        self.told_keywords = set(self.keywords)
        self.dirty = False
        self.unwatch = None
        self.condstore = False               # RFC 7162: MODSEQ in every FETCH of flags
        self.qresync = False                 # VANISHED for EXPUNGE, UID in every FETCH
        self.cap: int | None = None          # see modseq_of

    @staticmethod
    def _keywords_in(infos) -> set[str]:
        return {f for m in infos for f in m.flags if not f.startswith("\\")}

    # --- facts -------------------------------------------------------------------------
    @property
    def uidnext(self) -> int:
        return max([self.folder.uidnext] + [u + 1 for u in self.uids[-1:]])

    def flag_names(self) -> bytes:
        return " ".join(list(SYSTEM_FLAGS) + sorted(self.keywords)).encode()

    def flags_of(self, info) -> bytes:
        flags = sorted(info.flags)
        if info.uid in self.recent:
            flags.append("\\Recent")
        return " ".join(flags).encode()

    def seq_of_uid(self, uid: int) -> int | None:
        index = bisect_left(self.uids, uid)
        return index + 1 if index < len(self.uids) and self.uids[index] == uid else None

    def select(self, sequence_set, uid: bool) -> list[tuple[int, object]]:
        """[(seq, MessageInfo)] a sequence set names, in order (RFC 3501 §9, §6.4.8)."""
        if not self.infos:
            return []
        if uid:
            chosen = sequence_set.resolve(self.uids, self.uids[-1])
            return [(self.seq_of_uid(u), self.infos[self.seq_of_uid(u) - 1]) for u in chosen]
        chosen = sequence_set.resolve(range(1, len(self.infos) + 1), len(self.infos))
        return [(seq, self.infos[seq - 1]) for seq in chosen]

    def uid_range(self, low: int, high: int) -> list[int]:
        return self.uids[bisect_left(self.uids, low):bisect_right(self.uids, high)]

    # --- changes made by this session ------------------------------------------------------
    def apply_flags(self, updated: dict[int, frozenset], modseqs=None) -> list[int]:
        """New flags (and modseqs) of messages (by id) from this session's own STORE:
        the seqs whose flags changed."""
        seqs, modseqs = [], modseqs or {}
        for seq, info in enumerate(self.infos, 1):
            flags = updated.get(info.id)
            modseq = modseqs.get(info.id, info.modseq)
            if flags is not None and (flags != info.flags or modseq != info.modseq):
                self.infos[seq - 1] = replace(info, flags=frozenset(flags), modseq=modseq)
                if flags != info.flags:
                    seqs.append(seq)
                self.learn_keywords(flags)      # possibly another session's new keyword
        return seqs

    def learn_keywords(self, flags) -> bool:
        new = {f for f in flags if not f.startswith("\\")} - self.keywords
        self.keywords |= new
        return bool(new)

    def uids_of(self, message_ids) -> set[int]:
        """The UIDs of rows this session removed itself (never one already ``gone``)."""
        ids = set(message_ids)
        return {m.uid for m in self.infos if m.id in ids and m.uid not in self.gone}

    def drop(self, removed_uids) -> list[int]:
        """Remove messages (by UID); the seqs the client knew, highest first (EXPUNGE)."""
        removed = set(removed_uids)
        gone = [seq for seq, m in enumerate(self.infos, 1) if m.uid in removed]
        told = [seq for seq in gone if seq <= self.exists]   # not yet told: never was
        if gone:
            self.recent -= removed
            self.told_recent = len(self.recent)
            self.infos = [m for m in self.infos if m.uid not in removed]
            self.uids = [m.uid for m in self.infos]
            self.exists -= len(told)
        self.gone -= removed
        if not self.gone:
            self.cap = None
        return told[::-1]

    # --- what a client may be told of modseqs -----------------------------------------------
    def modseq_of(self, info) -> int:
        """The MODSEQ to tell of a message.  A client takes the highest MODSEQ it is told as
        the point up to which it knows every change (RFC 7162 §3.2.5.2; imaptest checks it),
        so none may pass the view's own point (``folder.modseq``), nor, while expunges
        wait untold (during FETCH, STORE, SEARCH), the point before them (``cap``): the
        client would resync from after them and never hear of them."""
        return min(info.modseq, self.highest_modseq)

    @property
    def highest_modseq(self) -> int:
        return self.cap if self.cap is not None else self.folder.modseq

    # --- changes made elsewhere --------------------------------------------------------------
    async def refresh(self) -> None:
        """Read what changed since the modseq we hold; remember what to tell."""
        self.dirty = False
        known_modseq = self.folder.modseq
        last_uid = self.uids[-1] if self.uids else 0
        found = await self.db.read(imap_store.changes_since, self.account.ref.id,
                                   self.folder.id, self.folder.modseq, len(self.infos),
                                   last_uid)
        if found is None:
            return
        self.folder, changed, alive = found
        if alive is not None:
            self.gone |= {m.uid for m in self.infos if m.uid not in alive}
        if self.gone and self.cap is None:
            self.cap = known_modseq          # the expunges found are all after it
        position = {m.uid: index for index, m in enumerate(self.infos)}
        arrived = []
        for m in changed:
            index = position.get(m.uid)
            if index is None and m.uid > last_uid:
                arrived.append(m)
            elif index is not None and self.infos[index].flags != m.flags:
                self.infos[index] = m
                self.changed.add(m.uid)
            elif index is not None:
                self.infos[index] = m            # our own change: its modseq, told already
        if arrived:
            await self._take(arrived)
        self.keywords |= self._keywords_in(changed)

    async def _take(self, arrived) -> None:
        """New messages join the view; with the folder read-write, \\Recent is claimed."""
        if self.rw:
            first = await self.db.run(imap_store.claim_recent, self.folder.id, arrived[-1].uid)
            self.recent.update(m.uid for m in arrived if m.uid >= first)
        self.infos.extend(arrived)
        self.uids.extend(m.uid for m in arrived)

    def tell_keywords(self, send) -> None:
        """FLAGS and PERMANENTFLAGS again when a keyword is new to the client: before any
        FETCH that shows it (RFC 3501 §7.2.6; imaptest checks it)."""
        if self.keywords != self.told_keywords:
            self.told_keywords = set(self.keywords)
            send(b"FLAGS (" + self.flag_names() + b")")
            permanent = self.flag_names() + b" \\*" if self.rw else b""
            send(b"OK [PERMANENTFLAGS (" + permanent + b")] Flags permitted")

    async def announce(self, send, expunge: bool) -> None:
        """Write the untagged responses for what changed (RFC 3501 §7.3, §7.4)."""
        if self.dirty:
            await self.refresh()
        if expunge and self.gone:
            for line in self.expunged(self.gone):
                send(line)
        self.tell_keywords(send)
        if len(self.infos) != self.exists:
            self.exists = len(self.infos)
            send(b"%d EXISTS" % self.exists)
        if len(self.recent) != self.told_recent:
            self.told_recent = len(self.recent)
            send(b"%d RECENT" % self.told_recent)
        for uid in sorted(self.changed):
            seq = self.seq_of_uid(uid)
            if seq is not None:
                send(b"%d FETCH (%s)" % (seq, self.fetch_flags(self.infos[seq - 1])))
        self.changed.clear()

    def fetch_flags(self, info, uid: bool = False) -> bytes:
        """What a FETCH of changed flags carries: FLAGS, and MODSEQ once CONDSTORE is
        enabled, UID once QRESYNC is (RFC 7162 §3.1.4, §3.2.4)."""
        out = b"FLAGS (%s)" % self.flags_of(info)
        if uid or self.qresync:
            out = b"UID %d " % info.uid + out
        return out + b" MODSEQ (%d)" % self.modseq_of(info) if self.condstore else out

    def expunged(self, removed_uids) -> list[bytes]:
        """Drop messages (by UID): the lines that tell it, one EXPUNGE per message
        (highest first) or, once QRESYNC is enabled, one VANISHED (RFC 7162 §3.2.10) of
        the UIDs the client was told of."""
        removed = set(removed_uids)
        told = self.infos[:self.exists]
        uids = sorted(m.uid for m in told if m.uid in removed)
        seqs = self.drop(removed)
        if self.qresync:
            return [b"VANISHED " + uid_set(uids)] if uids else []
        return [b"%d EXPUNGE" % seq for seq in seqs]
