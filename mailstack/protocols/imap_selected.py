"""IMAP commands of the selected state: FETCH, STORE, COPY, SEARCH, EXPUNGE, CLOSE, NOOP.

Why a mixin of its own: these are the handlers that read and change messages, each waiting
for its transaction before the tagged reply; ``imap.py`` keeps the session, TLS and login.
Each handler is re-declared in its dispatch tuple (Twisted binds the base functions there).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.mail import imap4

from mailstack.protocols.imap_mailbox import folder_name
from mailstack.protocols.imap_message import _raw_split, header_fields
from mailstack.store.errors import NotFound

P = imap4.IMAP4Server


class SelectedState:
    @defer.inlineCallbacks
    def _announce_new(self):
        before = self.mbox.getMessageCount()
        count, gone = yield self.mbox.refresh()
        for seq in reversed(gone):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        if count != before or gone:
            self.sendUntaggedResponse(b"%d EXISTS" % count)

    @defer.inlineCallbacks
    def do_NOOP(self, tag):
        if self.state == "select" and self.mbox is not None:
            try:
                yield self._announce_new()
            except Exception as e:
                return self._failed(defer.Failure(e), tag)
        self.sendPositiveResponse(tag, b"NOOP completed")

    unauth_NOOP = auth_NOOP = select_NOOP = logout_NOOP = (do_NOOP,)
    select_CHECK = (do_NOOP,)

    @defer.inlineCallbacks
    def do_FETCH(self, tag, messages, query, uid=0):
        # Our own loop instead of Twisted's __cbFetch: that one keeps per-command state on
        # the protocol and unblocks queued commands on its own.
        if not query:
            return self.sendPositiveResponse(tag, b"FETCH completed")
        cheap = {"flags", "internaldate", "rfc822size", "uid"}
        need_bodies = any(q.type not in cheap for q in query)
        marks_seen = any((q.type == "body" and not q.peek and (q.header or q.text or q.mime or q.empty))
                         or q.type in ("rfc822", "rfc822text") for q in query)
        try:
            results = yield self.mbox.fetch(messages, uid, need_bodies)
            if marks_seen:
                yield self.mbox.mark_seen([(seq, msg.info) for seq, msg in results])
                for seq, msg in results:
                    msg.info = self.mbox.infos[seq - 1]
            for seq, msg in results:
                if self.transport.disconnecting:
                    return None
                yield self.spewMessage(seq, msg, query, uid)
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.sendPositiveResponse(tag, b"FETCH completed")

    select_FETCH = (do_FETCH, P.arg_seqset, P.arg_fetchatt)

    def spew_body(self, part, id, msg, _w=None, _f=None):
        # Twisted ignores <partial> and re-synthesizes headers; we send stored bytes.
        target = msg
        for index in part.part:
            target = target.getSubPart(index) if target.isMultipart() else None
            if target is None:
                raise TypeError("no such body part")
        raw = target.raw()
        head, text = _raw_split(raw)
        if part.header and part.header.fields:
            fields = [f.decode() if isinstance(f, bytes) else f for f in part.header.fields]
            data = header_fields(head, fields, part.header.negate)
        elif part.header or part.mime:
            data = head
        elif part.text:
            data = text
        elif part.empty:
            data = raw if not part.part else text
        else:
            _w(b"BODY " + imap4.collapseNestedLists([imap4.getBodyStructure(msg)]))
            return None
        name = _section_name(part)
        if part.partialBegin is not None:
            data = data[part.partialBegin:part.partialBegin + part.partialLength]
            name += b"<%d>" % part.partialBegin
        _w(name + b" {%d}\r\n" % len(data) + data)
        return None

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
            yield self.mbox.copy_to(chosen, _name(mailbox))
        except NotFound:
            return self.sendNegativeResponse(tag, b"[TRYCREATE] No such mailbox")
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.sendPositiveResponse(tag, b"COPY completed")

    select_COPY = (do_COPY, P.arg_seqset, P.arg_finalastring)

    @defer.inlineCallbacks
    def do_SEARCH(self, tag, charset, query, uid=0):
        try:
            found = yield self.mbox.search(query, uid)
        except ValueError:
            return self.sendBadResponse(tag, b"Unsupported search criteria")
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        self.sendUntaggedResponse(b"SEARCH" + b"".join(b" %d" % n for n in found))
        self.sendPositiveResponse(tag, b"SEARCH completed")

    select_SEARCH = (do_SEARCH, P.opt_charset, P.arg_searchkeys)

    @defer.inlineCallbacks
    def do_EXPUNGE(self, tag):
        if not self.mbox.isWriteable():
            return self.sendNegativeResponse(tag, b"[READ-ONLY] Mailbox is read-only")
        try:
            gone = yield self.mbox.expunge()
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        for seq in reversed(gone):
            self.sendUntaggedResponse(b"%d EXPUNGE" % seq)
        self.sendPositiveResponse(tag, b"EXPUNGE completed")

    select_EXPUNGE = (do_EXPUNGE,)

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




def _name(raw) -> str:
    # Twisted's _parseMbox logs a traceback for every undecodable name; we just refuse it.
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("imap4-utf-7")
        except UnicodeError:
            raise imap4.IllegalMailboxEncoding("undecodable mailbox name") from None
    return folder_name(raw)


def _section_name(part) -> bytes:
    section = b".".join(str(i + 1).encode() for i in part.part)
    sep = b"." if section else b""
    if part.header:
        section += sep + bytes(part.header)
    elif part.text:
        section += sep + b"TEXT"
    elif part.mime:
        section += sep + b"MIME"
    return b"BODY[" + section + b"]"
