"""IMAP commands of the selected state: STORE, COPY, MOVE, SEARCH, EXPUNGE, CLOSE, UNSELECT,
CHECK (FETCH lives in ``imap_fetch``).

Why a module of its own: these change or search the selected folder, each in one
transaction answered from its callback; the view (``imap_view``) is changed only by what
the store returns, so a flag set by another session is never overwritten (STORE adds and
removes on the stored flags, RFC 3501 §6.4.6).
A COPY or MOVE into or out of \\Junk queues its spam or ham learns in its own transaction
when learning is on (``store/spam_learning.py``), and kicks the learner after the commit.
Standards: RFC 3501 §6.4, RFC 4315 (UIDPLUS), RFC 6851 (MOVE), RFC 3691 (UNSELECT),
RFC 6154 (\\Junk), RFC 7162 (UNCHANGEDSINCE, SEARCH MODSEQ, VANISHED: the rules in
``imap_condstore``).
Security: messages are named only through the session's view (sequence numbers and UIDs
resolve against it), so no command reaches a message outside the selected folder, and the
target of COPY and MOVE is looked up under the logged-in account; STORE, MOVE and EXPUNGE
are refused in a folder selected read-only (EXAMINE) and CLOSE expunges only a read-write
one.  Not here: the cost of SEARCH, which is one query on the folder but reads every text
row for BODY and TEXT keys, and is not rate-limited.
"""

from __future__ import annotations

from bisect import bisect_left

from mailstack import replies
from mailstack.protocols.imap_account import folder_name
from mailstack.protocols.imap_fetch import FetchCommand
from mailstack.protocols.imap_format import esearch, returned, uid_set
from mailstack.protocols.imap_replies import READ_ONLY, TRYCREATE, no
from mailstack.protocols.imap_search_grammar import resolve_recent
from mailstack.store import condstore, imap_store, message_search, spam_learning
from mailstack.store.errors import NotFound, OverQuota


class SelectedCommands(FetchCommand):
    async def cmd_CHECK(self, command):
        self.view.dirty = True            # read the store before the reply, like NOOP
        return b"CHECK completed"

    async def cmd_STORE(self, command):
        view = self.view
        if not view.rw:
            raise no(READ_ONLY)
        if command.unchanged_since is not None:
            self.enable_condstore()
        chosen = view.select(command.sequence, command.uid)
        before = {m.id: m.modseq for _, m in chosen}
        stored = await self.db.run(condstore.store_flags, view.folder.id,
                                   [m.id for _, m in chosen], command.mode,
                                   command.flags, command.unchanged_since)
        view.learn_keywords(command.flags)
        view.apply_flags(stored.flags, stored.modseqs)
        await self.store_synced()
        view.tell_keywords(self.untagged)        # a new keyword, before a FETCH shows it
        failed = set(stored.modified)
        for seq, info in chosen:
            # .SILENT still tells a new MODSEQ once CONDSTORE is on (RFC 7162 §3.1.3).
            changed = self.condstore and stored.modseqs.get(info.id) != before[info.id]
            if info.id in stored.flags and info.id not in failed and (
                    not command.silent or changed):
                self._flags_line(seq, command.uid)
        return self.modified_code(command, chosen, stored.modified) + b"STORE completed"

    def _flags_line(self, seq: int, uid: bool):
        info = self.view.infos[seq - 1]
        self.untagged(b"%d FETCH (%s)" % (seq, self.view.fetch_flags(info, uid)))

    # --- COPY and MOVE --------------------------------------------------------------------
    async def cmd_COPY(self, command):
        chosen = self.view.select(command.sequence, command.uid)
        try:
            folder, ids, uids = await self.db.run(
                imap_store.copy_messages, self.account.ref.id, [m.id for _, m in chosen],
                folder_name(command.mailbox), learning=self._recording())
        except NotFound:
            raise no(TRYCREATE) from None
        except OverQuota:
            raise no(replies.IMAP_OVER_QUOTA) from None
        self._learn(folder, ids)
        return self._copyuid(folder, ids, uids) + b"COPY completed"

    async def cmd_MOVE(self, command):
        view = self.view
        if not view.rw:
            raise no(READ_ONLY)
        chosen = view.select(command.sequence, command.uid)
        try:
            folder, ids, uids = await self.db.run(
                imap_store.move_messages, self.account.ref.id, view.folder.id,
                [m.id for _, m in chosen], folder_name(command.mailbox),
                learning=self._recording())
        except NotFound:
            raise no(TRYCREATE) from None
        self._learn(folder, ids)
        if uids:   # RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges
            self.untagged(b"OK " + self._copyuid(folder, ids, uids) + b"Moved")
        self.tell_expunged(ids)          # EXPUNGE, or VANISHED with QRESYNC (imap_condstore)
        return b"MOVE completed"

    def _recording(self):
        learner = self.spam_learner
        return learner.recording() if learner is not None else None

    def _learn(self, folder, ids) -> None:
        """After the commit: wake the learner when the copy taught something."""
        if self.spam_learner is not None and ids and spam_learning.direction(
                self.view.folder.special_use, folder.special_use):
            self.spam_learner.kick()

    def _copyuid(self, folder, ids, uids) -> bytes:
        if not uids:
            return b""
        by_id = {m.id: m.uid for m in self.view.infos}
        sources = [by_id[i] for i in ids if i in by_id]
        return b"[COPYUID %d %s %s] " % (folder.uidvalidity, uid_set(sources), uid_set(uids))

    # --- SEARCH -----------------------------------------------------------------------------
    async def cmd_SEARCH(self, command):
        view = self.view
        criteria = resolve_recent(command.criteria, frozenset(view.recent))
        snapshot = list(view.uids)          # ascending: sequence order
        found = await self.db.read(message_search.search, view.folder.id, criteria,
                                   snapshot)
        if not command.uid:
            found = [bisect_left(snapshot, u) + 1 for u in found]
        found = sorted(found)
        reported = returned(found, command.returns)
        modseq = self.search_modseq(command.criteria, reported if command.uid
                                    else [snapshot[n - 1] for n in reported])
        if command.returns is not None:
            self.untagged(esearch(command.tag, command.uid, found, command.returns, modseq))
        else:
            self.untagged(b"SEARCH" + b"".join(b" %d" % n for n in found)
                          + (b" (MODSEQ %d)" % modseq if modseq is not None else b""))
        return b"SEARCH completed"

    # --- EXPUNGE, CLOSE, UNSELECT -------------------------------------------------------------
    async def cmd_EXPUNGE(self, command):
        view = self.view
        if not view.rw:
            raise no(READ_ONLY)
        only = None
        if command.uid:
            only = [m.id for _, m in view.select(command.sequence, True)]
        removed = await self.db.run(imap_store.expunge, view.folder.id, only)
        self.tell_expunged(removed)
        return await self.expunge_code() + b"EXPUNGE completed"

    async def cmd_CLOSE(self, command):
        if self.view.rw:
            await self.db.run(imap_store.expunge, self.view.folder.id, None)   # silently
        self.leave_folder()
        return b"CLOSE completed"

    async def cmd_UNSELECT(self, command):
        """RFC 3691: leave the mailbox without expunging."""
        self.leave_folder()
        return b"UNSELECT completed"
