"""IMAP commands on folders: LIST/LSUB with SPECIAL-USE, CREATE (with USE), DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS, and the QUOTA commands.

Why ours: Twisted's LIST takes only ``reference pattern`` and answers with the mailbox's
``getFlags()`` (#10290); its CREATE/DELETE/RENAME read a Deferred as success before the
commit.  Here every change is answered from its transaction's callback.
Standards: RFC 3501, RFC 5258 syntax (selection and RETURN options), RFC 6154
(SPECIAL-USE, CREATE-SPECIAL-USE), RFC 9208 (QUOTA), RFC 8438 (STATUS SIZE).
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.mail import imap4

from mailstack.protocols.imap_selected import _name
from mailstack.store.errors import Conflict, NotFound

P = imap4.IMAP4Server
SPECIAL_USES = ("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash")


def _atoms(items) -> set[str]:
    return {i.decode("ascii", "replace").upper() for i in items if isinstance(i, bytes)}


def parse_list(line: bytes):
    """(selection options, reference, [patterns], return options) of a LIST command."""
    try:
        args = imap4.parseNestedParens(line or b"")
    except imap4.MismatchedNesting as e:
        raise imap4.IllegalClientResponse("bad LIST syntax") from e
    selection = _atoms(args.pop(0)) if args and isinstance(args[0], list) else set()
    returns = set()
    if len(args) >= 2 and args[-2] in (b"RETURN", b"return") and isinstance(args[-1], list):
        returns = _atoms(args[-1])
        args = args[:-2]
    if len(args) != 2:
        raise imap4.IllegalClientResponse("LIST needs a reference and a pattern")
    reference, patterns = args
    patterns = patterns if isinstance(patterns, list) else [patterns]
    if not isinstance(reference, bytes) or not all(isinstance(p, bytes) for p in patterns):
        raise imap4.IllegalClientResponse("bad LIST arguments")
    return selection, reference, patterns, returns


class FolderCommands:
    def _change(self, tag, d, done: bytes):
        """Answer OK only after the commit; a refusal is NO, an outage NO [UNAVAILABLE]."""
        def failed(failure):
            if failure.check(Conflict):
                return self.sendNegativeResponse(tag, b"[ALREADYEXISTS] " + done + b" refused")
            if failure.check(NotFound):
                return self.sendNegativeResponse(tag, b"[NONEXISTENT] No such mailbox")
            self._failed(failure, tag)
        d.addCallbacks(lambda ok: self.sendPositiveResponse(tag, done + b" completed")
                       if ok is not False else self.sendNegativeResponse(tag, done + b" refused"),
                       failed)
        return d

    # --- LIST / LSUB ---------------------------------------------------------------------
    @defer.inlineCallbacks
    def do_LIST(self, tag, line, command=b"LIST"):
        selection, reference, patterns, returns = parse_list(line)
        unknown = selection - {"SPECIAL-USE", "SUBSCRIBED", "REMOTE"}
        if unknown or returns - {"SPECIAL-USE", "SUBSCRIBED", "CHILDREN"}:
            return self.sendBadResponse(tag, b"Unsupported LIST option")
        subscribed_only = command == b"LSUB" or "SUBSCRIBED" in selection
        show_subscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in returns
        try:
            found = []
            for pattern in patterns:
                ref, wildcard = (_name_text(x) for x in (reference, pattern))
                if not wildcard:     # LIST "" "": the hierarchy delimiter (RFC 3501 §6.3.8)
                    self.sendUntaggedResponse(command + b' (\\Noselect) "/" ""')
                    continue
                found += (yield self.account.listMailboxes(ref, wildcard))
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        seen = set()
        for name, entry in found:
            if name in seen:
                continue
            seen.add(name)
            attributes = list(entry.getFlags())
            subscribed = self.account.isSubscribed(name)
            if subscribed_only and not subscribed:
                continue
            if "SPECIAL-USE" in selection and not any(a in SPECIAL_USES for a in attributes):
                continue
            if show_subscribed and subscribed:
                attributes.append("\\Subscribed")
            self.sendUntaggedResponse(imap4.collapseNestedLists([
                imap4.DontQuoteMe(command), [imap4.DontQuoteMe(a.encode()) for a in attributes],
                b"/", name.encode("imap4-utf-7")]))
        self.sendPositiveResponse(tag, command + b" completed")

    def do_LSUB(self, tag, line):
        return self.do_LIST(tag, line, b"LSUB")

    auth_LIST = select_LIST = (do_LIST, P.arg_line)
    auth_LSUB = select_LSUB = (do_LSUB, P.arg_line)

    # --- CREATE and the rest --------------------------------------------------------------
    def do_CREATE(self, tag, name, options):
        special_use = None
        if options:
            try:
                parsed = imap4.parseNestedParens(options)
            except imap4.MismatchedNesting:
                return self.sendBadResponse(tag, b"Bad CREATE options")
            uses = parsed[0][1] if (len(parsed) == 1 and isinstance(parsed[0], list)
                                    and len(parsed[0]) == 2 and parsed[0][0].upper() == b"USE"
                                    and isinstance(parsed[0][1], list)) else None
            if uses is None:
                return self.sendBadResponse(tag, b"Bad CREATE options")
            wanted = [u.decode("ascii", "replace").capitalize() for u in uses]
            wanted = ["\\" + u.lstrip("\\").capitalize() for u in wanted]
            if len(wanted) != 1 or wanted[0] not in SPECIAL_USES:
                return self.sendNegativeResponse(
                    tag, b"[USE-ATTR] Supported: one of " + " ".join(SPECIAL_USES).encode())
            special_use = wanted[0]
        return self._change(tag, self.account.create(_name(name), special_use), b"CREATE")

    def do_DELETE(self, tag, name):
        return self._change(tag, self.account.delete(_name(name)), b"DELETE")

    def do_RENAME(self, tag, old, new):
        return self._change(tag, self.account.rename(_name(old), _name(new)), b"RENAME")

    def do_SUBSCRIBE(self, tag, name):
        return self._change(tag, self.account.subscribe(_name(name)), b"SUBSCRIBE")

    def do_UNSUBSCRIBE(self, tag, name):
        return self._change(tag, self.account.unsubscribe(_name(name)), b"UNSUBSCRIBE")

    auth_CREATE = select_CREATE = (do_CREATE, P.arg_astring, P.arg_line)
    auth_DELETE = select_DELETE = (do_DELETE, P.arg_finalastring)
    auth_RENAME = select_RENAME = (do_RENAME, P.arg_astring, P.arg_finalastring)
    auth_SUBSCRIBE = select_SUBSCRIBE = (do_SUBSCRIBE, P.arg_finalastring)
    auth_UNSUBSCRIBE = select_UNSUBSCRIBE = (do_UNSUBSCRIBE, P.arg_finalastring)

    @defer.inlineCallbacks
    def do_STATUS(self, tag, mailbox, names):
        try:
            status = yield self.account.status(_name(mailbox),
                                               [n.decode("ascii", "replace") for n in names])
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if status is None:
            return self.sendNegativeResponse(tag, b"[NONEXISTENT] No such mailbox")
        items = " ".join(f"{k} {v}" for k, v in status.items()).encode()
        self.sendUntaggedResponse(b"STATUS " + imap4._quote(mailbox) + b" (" + items + b")")
        self.sendPositiveResponse(tag, b"STATUS completed")

    auth_STATUS = select_STATUS = (do_STATUS, P.arg_astring, P.arg_plist)

    # --- QUOTA (RFC 9208): one root "" per account, STORAGE in units of 1024 octets -------
    @defer.inlineCallbacks
    def _quota_line(self):
        used, limit = yield self.account.quota()
        if limit is None:
            return None
        return b'QUOTA "" (STORAGE %d %d)' % ((used + 1023) // 1024, limit // 1024)

    @defer.inlineCallbacks
    def do_GETQUOTAROOT(self, tag, mailbox):
        try:
            mbox = yield self.account.select(_name(mailbox), False)
            line = None if mbox is None else (yield self._quota_line())
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if mbox is None:
            return self.sendNegativeResponse(tag, b"[NONEXISTENT] No such mailbox")
        root = imap4._quote(mailbox)
        self.sendUntaggedResponse(b"QUOTAROOT " + root + (b' ""' if line else b""))
        if line:
            self.sendUntaggedResponse(line)
        self.sendPositiveResponse(tag, b"GETQUOTAROOT completed")

    @defer.inlineCallbacks
    def do_GETQUOTA(self, tag, root):
        try:
            line = yield self._quota_line() if root == b"" else None
        except Exception as e:
            return self._failed(defer.Failure(e), tag)
        if line is None:
            return self.sendNegativeResponse(tag, b"[NONEXISTENT] No such quota root")
        self.sendUntaggedResponse(line)
        self.sendPositiveResponse(tag, b"GETQUOTA completed")

    def do_SETQUOTA(self, tag, root, limits):
        return self.sendNegativeResponse(
            tag, b"[NOPERM] Quotas are set by the administrator (mailstack account quota)")

    auth_GETQUOTAROOT = select_GETQUOTAROOT = (do_GETQUOTAROOT, P.arg_finalastring)
    auth_GETQUOTA = select_GETQUOTA = (do_GETQUOTA, P.arg_finalastring)
    auth_SETQUOTA = select_SETQUOTA = (do_SETQUOTA, P.arg_astring, P.arg_plist)


def _name_text(raw: bytes) -> str:
    try:
        return raw.decode("imap4-utf-7")
    except UnicodeError:
        raise imap4.IllegalMailboxEncoding("undecodable mailbox name") from None
