"""CONDSTORE and QRESYNC (RFC 7162) in the session: what is enabled, and the parts of
SELECT, FETCH, STORE, SEARCH and EXPUNGE that change once it is.

Why a module of its own: the commands themselves live in ``imap_folders``,
``imap_fetch`` and ``imap_selected``; each calls in here for its RFC 7162 part, so the
rules of the extension (when it is enabled, what a response must then carry) are in one
place.  The modseqs are the store's own (``messages.modseq``, ``folders.modseq``), kept
for every message, so NOMODSEQ is never answered.

CONDSTORE is enabled by ENABLE, or by the first command that uses it (RFC 7162 §3.1:
SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE UNCHANGEDSINCE, SEARCH
MODSEQ); QRESYNC only by ENABLE QRESYNC, and it enables CONDSTORE too (§3.2.3).  A QRESYNC
SELECT costs the changes since the client's modseq, read over the (folder, modseq)
indexes of messages and of vanished UIDs (``store/condstore.py``, ``store/vanished.py``);
the seq-match data of QRESYNC is accepted and not needed (§3.2.5.2 makes it a hint).

Standards: RFC 7162 (CONDSTORE, QRESYNC), RFC 5161 (ENABLE), RFC 4466 (SELECT syntax).
Security: every modseq and UID answered is of the selected folder of the logged-in
account (the view's, or read with its folder id); the ranges a client names are
intersected as ranges, never expanded, so ``1:4294967295`` costs nothing.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from mailstack.protocols.imap_fetch_items import FetchItem
from mailstack.protocols.imap_format import uid_set
from mailstack.protocols.imap_replies import bad
from mailstack.store import condstore
from mailstack.store.search_criteria import Modseq, _children

ENABLEABLE = ("CONDSTORE", "QRESYNC")


class CondstoreCommands:
    condstore = False        # enabled in this session (RFC 7162 §3.1)
    qresync = False          # enabled in this session (RFC 7162 §3.2.3)

    # --- enabling ------------------------------------------------------------------------
    def enable_extensions(self, names) -> list[bytes]:
        """ENABLE (RFC 5161): what of ``names`` is now enabled, to list in ENABLED."""
        enabled = []
        for name in dict.fromkeys(names):
            if name == "QRESYNC":
                self.enable_condstore()
                self.qresync = True
                if self.view is not None:
                    self.view.qresync = True
            elif name == "CONDSTORE":
                self.enable_condstore()
            else:
                continue
            enabled.append(name.encode())
        return enabled

    def enable_condstore(self) -> None:
        """Once enabled with a folder selected, the client learns its HIGHESTMODSEQ."""
        if self.condstore:
            return
        self.condstore = True
        if self.view is not None:
            self.view.condstore = True
            self.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % self.view.highest_modseq)

    # --- SELECT and EXAMINE ----------------------------------------------------------------
    def check_select(self, command) -> None:
        """Before the current folder is left: BAD for parameters we do not know, and for
        QRESYNC before ENABLE QRESYNC (RFC 7162 §3.2.5)."""
        if set(command.params) - set(ENABLEABLE):
            raise bad(b"Unknown SELECT parameter")
        if command.qresync is not None and not self.qresync:
            raise bad(b"QRESYNC is not enabled")
        if self.view is not None:     # RFC 7162 §3.2.11, QRESYNC enabled or not (as Dovecot)
            self.untagged(b"OK [CLOSED] Previous mailbox closed")

    async def selected_with_modseq(self, command, view) -> None:
        """After SELECT's own responses: HIGHESTMODSEQ, and a QRESYNC's changes."""
        view.condstore, view.qresync = self.condstore, self.qresync
        if "CONDSTORE" in command.params:
            self.enable_condstore()
        if self.condstore:
            self.untagged(b"OK [HIGHESTMODSEQ %d] Highest" % view.folder.modseq)
        wanted = command.qresync
        if wanted is None or wanted.uidvalidity != view.folder.uidvalidity:
            return                        # another UIDVALIDITY: the client starts afresh
        last = view.uids[-1] if view.uids else 0
        known = wanted.known_uids.merged(last) if wanted.known_uids else None
        changed, gone = await self.db.read(condstore.resync, view.folder.id, wanted.modseq,
                                           max(view.uidnext - 1, 0))
        # Read after the view's snapshot: what happened since is told as any change is.
        gone = without(gone, view.uids)
        gone = intersect(gone, known) if known is not None else gone
        if gone:
            self.untagged(b"VANISHED (EARLIER) " + _ranges_text(gone))
        for message in changed:
            seq = view.seq_of_uid(message.uid)
            if seq is not None and view.infos[seq - 1].modseq > wanted.modseq:
                info = view.infos[seq - 1]
                self.untagged(b"%d FETCH (%s)" % (seq, view.fetch_flags(info, uid=True)))

    # --- FETCH ---------------------------------------------------------------------------
    async def fetch_with_modseq(self, command, chosen, items):
        """FETCH's RFC 7162 part: (the messages to answer, the items to answer with)."""
        if command.vanished and not (command.uid and self.qresync):
            raise bad(b"VANISHED needs UID FETCH with QRESYNC enabled")
        wants_modseq = any(i.name == "MODSEQ" for i in items)
        if command.changed_since is None:
            if wants_modseq:
                self.enable_condstore()
            return chosen, items
        self.enable_condstore()
        if not wants_modseq:
            items = [*items, FetchItem("MODSEQ")]
        view = self.view
        if view.dirty:
            await view.refresh()          # the modseqs compared must be the store's
        since = command.changed_since
        if command.vanished:
            await self._vanished_earlier(command.sequence, since)
        # A refresh replaces infos in place (seqs hold still during FETCH, §7.4.1).
        chosen = [(seq, view.infos[seq - 1]) for seq, _ in chosen
                  if view.infos[seq - 1].modseq > since]
        if any(i.name == "FLAGS" for i in items):      # told here: not again after it
            view.changed -= {m.uid for _, m in chosen}
        return chosen, items

    async def _vanished_earlier(self, sequence, since: int) -> None:
        view = self.view
        last = max(view.uidnext - 1, 0)
        gone = await self.db.read(condstore.vanished_since, view.folder.id, since, last)
        gone = intersect(gone, sequence.merged(last))
        if gone:
            self.untagged(b"VANISHED (EARLIER) " + _ranges_text(gone))

    # --- STORE ---------------------------------------------------------------------------
    def modified_code(self, command, chosen, modified) -> bytes:
        """``[MODIFIED set]`` of the messages that failed UNCHANGEDSINCE (RFC 7162 §3.1.3):
        UIDs for UID STORE, message numbers otherwise."""
        if not modified:
            return b""
        failed = set(modified)
        names = sorted(m.uid if command.uid else seq for seq, m in chosen if m.id in failed)
        return b"[MODIFIED " + uid_set(names) + b"] "

    # --- SEARCH --------------------------------------------------------------------------
    def search_modseq(self, criteria, found_uids) -> int | None:
        """The highest modseq of the messages found when the search used MODSEQ (§3.1.5:
        ``(MODSEQ n)`` after SEARCH's results, ``MODSEQ n`` in ESEARCH's), else None."""
        if not uses_modseq(criteria):
            return None
        self.enable_condstore()
        wanted = set(found_uids)
        return max((self.view.modseq_of(m) for m in self.view.infos if m.uid in wanted),
                   default=None)

    # --- EXPUNGE -------------------------------------------------------------------------
    def tell_expunged(self, removed_ids) -> None:
        """Rows this session deleted (EXPUNGE, MOVE): EXPUNGE or VANISHED lines."""
        for line in self.view.expunged(self.view.uids_of(removed_ids)):
            self.untagged(line)

    async def expunge_code(self) -> bytes:
        """``[HIGHESTMODSEQ n]`` in EXPUNGE's tagged reply once CONDSTORE is enabled: the
        view's point after reading what changed, all of which is told before the reply."""
        if not self.condstore:
            return b""
        await self.view.refresh()
        return b"[HIGHESTMODSEQ %d] " % self.view.folder.modseq

    async def store_synced(self) -> None:
        """After a STORE with CONDSTORE on: read what else changed, so that the MODSEQs told
        (our own, newer than the view) never pass an expunge made meanwhile elsewhere."""
        if self.condstore:
            await self.view.refresh()


def uses_modseq(node) -> bool:
    return isinstance(node, Modseq) or any(uses_modseq(c) for c in _children(node))


def intersect(ranges, other) -> list[tuple[int, int]]:
    """Two ascending lists of (first, last) ranges: their common ranges."""
    out, i, j = [], 0, 0
    while i < len(ranges) and j < len(other):
        low = max(ranges[i][0], other[j][0])
        high = min(ranges[i][1], other[j][1])
        if low <= high:
            out.append((low, high))
        if ranges[i][1] < other[j][1]:
            i += 1
        else:
            j += 1
    return out


def without(ranges, uids) -> list[tuple[int, int]]:
    """``ranges`` less the ascending ``uids`` inside them (bisected: a range of a million
    UIDs with none of them inside costs one lookup)."""
    out = []
    for low, high in ranges:
        start = bisect_left(uids, low)
        for uid in uids[start:bisect_right(uids, high)]:
            if uid > low:
                out.append((low, uid - 1))
            low = uid + 1
        if low <= high:
            out.append((low, high))
    return out


def _ranges_text(ranges) -> bytes:
    return b",".join(b"%d" % a if a == b else b"%d:%d" % (a, b) for a, b in ranges)
