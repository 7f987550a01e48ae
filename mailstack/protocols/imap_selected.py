"""IMAP commands of the selected state: FETCH, STORE, COPY, MOVE, SEARCH, EXPUNGE, CLOSE,
UNSELECT, NOOP, and the announcements of other sessions' changes.

Why a mixin of its own: these are the handlers that read and change messages, each waiting
for its transaction before the tagged reply; ``imap.py`` keeps the session, TLS and login.
Each handler is re-declared in its dispatch tuple (Twisted binds the base functions there).
Standards: RFC 3501, RFC 4315 (UIDPLUS), RFC 6851 (MOVE), RFC 3691 (UNSELECT).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.mail import imap4

from mailstack import replies
from mailstack.protocols.imap_fetch import FetchWriter
from mailstack.protocols.imap_mailbox import folder_name
from mailstack.protocols import imap_search
from mailstack.protocols.imap_search import BadCharset
from mailstack.store.errors import NotFound, OverQuota

P = imap4.IMAP4Server
BATCH = 500      # messages per body query: bounds memory on FETCH 1:* BODY[]


def uid_set(uids) -> bytes:
    """1,2,3,7,9,10 -> b"1:3,7,9:10" (RFC 4315 sequence sets)."""
    out, run = [], []
    for uid in uids:
        if run and uid == run[-1] + 1:
            run.append(uid)
            continue
        if run:
            out.append(run)
        run = [uid]
    if run:
        out.append(run)
    return b",".join(b"%d" % r[0] if len(r) == 1 else b"%d:%d" % (r[0], r[-1]) for r in out)


class SelectedState(FetchWriter):
    @defer.inlineCallbacks
    def announce_changes(self):
        """Tell the client what other sessions did: EXPUNGE, EXISTS, then FETCH FLAGS."""
        before = self.mbox.getMessageCount()
        gone, count, flagged = yield self.mbox.refresh()
        for seq in reversed(gone):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        if count != before or gone:
            self.sendUntaggedResponse(b"%d EXISTS" % count)
        for seq in flagged:
            flags = " ".join(self.mbox.flags_of(seq)).encode()
            self.sendUntaggedResponse(b"%d FETCH (FLAGS (%s))" % (seq, flags))

    @defer.inlineCallbacks
    def do_NOOP(self, tag):
        if self.state == "select" and self.mbox is not None:
            try:
                yield self.announce_changes()
            except Exception as e:
                return self._failed(defer.Failure(e), tag)
        self.sendPositiveResponse(tag, b"NOOP completed")

    unauth_NOOP = auth_NOOP = select_NOOP = logout_NOOP = (do_NOOP,)
    select_CHECK = (do_NOOP,)

    def do_UID(self, tag, command, line):
        # Twisted routes only COPY/FETCH/STORE/SEARCH; UIDPLUS and MOVE add two.
        command = command.upper()
        if command not in (b"COPY", b"FETCH", b"STORE", b"SEARCH", b"MOVE", b"EXPUNGE"):
            raise imap4.IllegalClientResponse(command)
        self.dispatchCommand(tag, command, line, uid=1)

    select_UID = (do_UID, P.arg_atom, P.arg_line)

    @defer.inlineCallbacks
    def do_FETCH(self, tag, messages, query, uid=0):
        # Our own writer instead of Twisted's __cbFetch/spewMessage: that one keeps
        # per-command state on the protocol and schedules one reactor turn per message.
        if not query:
            return self.sendPositiveResponse(tag, b"FETCH completed")
        need_bodies = self.needs_bodies(query)
        try:
            chosen = self.mbox.resolve(messages, uid)
            now_seen = set()
            if self.marks_seen(query):
                now_seen = set((yield self.mbox.mark_seen(chosen)))
                chosen = [(seq, self.mbox.infos[seq - 1]) for seq, _ in chosen]
            for start in range(0, len(chosen), BATCH if need_bodies else len(chosen) or 1):
                batch = chosen[start:start + BATCH] if need_bodies else chosen
                loaded = yield self.mbox.load(batch, need_bodies)
                if self.transport.disconnecting:
                    return None
                self.write_fetch(loaded, query, uid, now_seen)
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.sendPositiveResponse(tag, b"FETCH completed")

    select_FETCH = (do_FETCH, P.arg_seqset, P.arg_fetchatt)

    @defer.inlineCallbacks
    def do_STORE(self, tag, messages, mode, flags, uid=0):
        mode = mode.upper()
        silent = mode.endswith(b"SILENT")
        sign = 1 if mode.startswith(b"+") else -1 if mode.startswith(b"-") else 0
        if not self.mbox.isWriteable():
            return self.sendNegativeResponse(tag, b"[READ-ONLY] Mailbox is read-only")
        try:
            result = yield self.mbox.store(messages, [f.decode() for f in flags], sign, uid)
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if not silent:
            for seq, new in sorted(result.items()):
                uidpart = b" UID %d" % self.mbox.getUID(seq) if uid else b""
                self.sendUntaggedResponse(b"%d FETCH (FLAGS (%s)%s)" % (
                    seq, " ".join(new).encode(), uidpart))
        self.sendPositiveResponse(tag, b"STORE completed")

    select_STORE = (do_STORE, P.arg_seqset, P.arg_atom, P.arg_flaglist)

    @defer.inlineCallbacks
    def do_COPY(self, tag, messages, mailbox, uid=0):
        chosen = self.mbox.resolve(messages, uid)
        try:
            validity, sources, uids = yield self.mbox.copy_to(chosen, _name(mailbox))
        except NotFound:
            return self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
        except OverQuota:
            return self.sendNegativeResponse(tag, replies.IMAP_OVER_QUOTA.imap())
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        code = self._copyuid(validity, sources, uids)
        self.sendPositiveResponse(tag, code + b"COPY completed")

    select_COPY = (do_COPY, P.arg_seqset, P.arg_finalastring)

    @staticmethod
    def _copyuid(validity, sources, uids) -> bytes:
        if not uids:
            return b""
        return b"[COPYUID %d %s %s] " % (validity, uid_set(sources), uid_set(uids))

    @defer.inlineCallbacks
    def do_MOVE(self, tag, messages, mailbox, uid=0):
        if not self.mbox.isWriteable():
            return self.sendNegativeResponse(tag, b"[READ-ONLY] Mailbox is read-only")
        chosen = self.mbox.resolve(messages, uid)
        try:
            validity, sources, uids, gone = yield self.mbox.move_to(chosen, _name(mailbox))
        except NotFound:
            return self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if uids:   # RFC 6851 §4.3: COPYUID goes in an untagged OK before the expunges
            self.sendPositiveResponse(None, self._copyuid(validity, sources, uids) + b"Moved")
        for seq in reversed(gone):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        self.sendPositiveResponse(tag, b"MOVE completed")

    select_MOVE = (do_MOVE, P.arg_seqset, P.arg_finalastring)

    @defer.inlineCallbacks
    def do_SEARCH(self, tag, charset, query, uid=0):
        try:
            found = yield self.mbox.search(query, uid, charset)
        except BadCharset:
            return self.sendNegativeResponse(tag, b"[BADCHARSET (US-ASCII UTF-8)] Unsupported charset")
        except ValueError:
            return self.sendBadResponse(tag, b"Unsupported search criteria")
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.sendUntaggedResponse(b"SEARCH" + b"".join(b" %d" % n for n in found))
        self.sendPositiveResponse(tag, b"SEARCH completed")

    # Twisted's arg_searchkeys never asks for a literal ({5} needles): ours does.
    select_SEARCH = (do_SEARCH, P.opt_charset, imap_search.arg_searchkeys)

    @defer.inlineCallbacks
    def do_EXPUNGE(self, tag, messages=None, uid=0):
        if not self.mbox.isWriteable():
            return self.sendNegativeResponse(tag, b"[READ-ONLY] Mailbox is read-only")
        if uid and messages is None:
            return self.sendBadResponse(tag, b"UID EXPUNGE needs a UID set")
        chosen = None if messages is None else self.mbox.resolve(messages, True)
        try:
            gone = yield self.mbox.expunge(chosen)
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        for seq in reversed(gone):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        self.sendPositiveResponse(tag, b"EXPUNGE completed")

    def arg_optional_seqset(self, line):
        if not line:
            return None, b""
        return self.arg_seqset(line)

    select_EXPUNGE = (do_EXPUNGE, arg_optional_seqset)

    @defer.inlineCallbacks
    def do_CLOSE(self, tag):
        try:
            if self.mbox.isWriteable():
                yield self.mbox.expunge()     # silently (RFC 3501 §6.4.2)
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.mbox, self.state = None, "auth"
        self.sendPositiveResponse(tag, b"CLOSE completed")

    select_CLOSE = (do_CLOSE,)

    def do_UNSELECT(self, tag):
        """RFC 3691: leave the mailbox without expunging."""
        self.mbox, self.state = None, "auth"
        self.sendPositiveResponse(tag, b"UNSELECT completed")

    select_UNSELECT = (do_UNSELECT,)


def _name(raw) -> str:
    # Twisted's _parseMbox logs a traceback for every undecodable name; we just refuse it.
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("imap4-utf-7")
        except UnicodeError:
            raise imap4.IllegalMailboxEncoding("undecodable mailbox name") from None
    return folder_name(raw)
