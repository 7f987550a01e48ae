"""IMAP commands on folders: SELECT/EXAMINE, LIST/LSUB, CREATE (with USE), DELETE, RENAME,
SUBSCRIBE, UNSUBSCRIBE, STATUS, APPEND and the QUOTA commands.

Why together: each names a folder and none depends on a selected one; every change is
answered from its transaction's callback (``imap_account``).  LIST and LSUB show the
hierarchy levels a pattern reaches even where no folder exists (``\\Noselect``, RFC 3501
§6.3.8–6.3.9), so a client can walk to a subscribed child.
Standards: RFC 3501 §6.3, RFC 5258 syntax (selection and RETURN options), RFC 6154
(SPECIAL-USE, CREATE-SPECIAL-USE), RFC 9208 (QUOTA), RFC 8438 (STATUS SIZE), RFC 4315
(APPENDUID), RFC 7889 (APPENDLIMIT).
Security: every folder operation goes through the logged-in account (``imap_account``);
INBOX can be neither deleted nor renamed; an APPEND over APPENDLIMIT is refused (its
literal before a byte of it is read, ``imap_literals``) and one over the quota gets
``NO [OVERQUOTA]``; SETQUOTA is refused, quotas are the administrator's.  Not here: how
many folders an account may create (not limited).
"""

from __future__ import annotations

import re

from mailstack import replies
from mailstack.protocols import imap_utf7
from mailstack.protocols.imap_account import DELIMITER
from mailstack.protocols.imap_format import astring
from mailstack.protocols.imap_replies import NONEXISTENT, TRYCREATE, bad, no
from mailstack.protocols.imap_view import FolderView
from mailstack.store import mailboxes
from mailstack.store.errors import Conflict, NotFound, OverQuota

SPECIAL_USES = ("\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash")


def mailbox_name(name: str) -> bytes:
    return astring(imap_utf7.encode(name))


def pattern_regex(reference: str, pattern: str):
    """RFC 3501 §6.3.8: ``*`` matches anything, ``%`` anything but the delimiter."""
    text = reference + pattern
    regex = "".join(".*" if c == "*" else f"[^{DELIMITER}]*" if c == "%" else re.escape(c)
                    for c in text)
    return re.compile(f"{regex}\\Z", re.IGNORECASE if text[:5].upper() == "INBOX" else 0)


def hierarchy(names) -> set[str]:
    """Every level above the given names ("a/b/c" gives "a" and "a/b")."""
    levels = set()
    for name in names:
        parts = name.split(DELIMITER)
        levels.update(DELIMITER.join(parts[:i]) for i in range(1, len(parts)))
    return levels


class FolderCommands:
    # --- SELECT / EXAMINE ------------------------------------------------------------------
    async def cmd_SELECT(self, command):
        return await self._open(command, rw=True)

    async def cmd_EXAMINE(self, command):
        return await self._open(command, rw=False)

    async def _open(self, command, rw: bool):
        self.check_select(command)          # RFC 7162 parameters (imap_condstore)
        self.leave_folder()         # RFC 3501 §6.3.1: even when this SELECT fails
        found = await self.account.open(command.mailbox, claim_recent=rw)
        if found is None:
            raise no(NONEXISTENT)
        view = FolderView(self.account, *found, rw=rw)
        self.enter_folder(view)
        flags = view.flag_names()
        self.untagged(b"FLAGS (" + flags + b")")
        permanent = flags + b" \\*" if rw else b""
        self.untagged(b"OK [PERMANENTFLAGS (" + permanent + b")] Flags permitted")
        self.untagged(b"%d EXISTS" % len(view.infos))
        self.untagged(b"%d RECENT" % len(view.recent))
        unseen = next((i for i, m in enumerate(view.infos, 1) if "\\Seen" not in m.flags), None)
        if unseen is not None:
            self.untagged(b"OK [UNSEEN %d] First unseen" % unseen)
        self.untagged(b"OK [UIDVALIDITY %d] UIDs valid" % view.folder.uidvalidity)
        self.untagged(b"OK [UIDNEXT %d] Predicted next UID" % view.uidnext)
        await self.selected_with_modseq(command, view)
        mode = b"[READ-WRITE]" if rw else b"[READ-ONLY]"
        return mode + b" " + command.name.encode() + b" completed"

    # --- LIST / LSUB -----------------------------------------------------------------------
    async def cmd_LIST(self, command):
        unknown = set(command.selection) - {"SPECIAL-USE", "SUBSCRIBED", "REMOTE"}
        if unknown or set(command.returns) - {"SPECIAL-USE", "SUBSCRIBED", "CHILDREN"}:
            raise bad(b"Unsupported LIST option")
        if command.patterns == ("",):    # the delimiter and root (RFC 3501 §6.3.8)
            self.untagged(b'LIST (\\Noselect) "/" ""')
            return b"LIST completed"
        folders = await self.account.folders()
        subscribed = {f.name for f in folders if f.subscribed}
        if "SUBSCRIBED" in command.selection:
            shown = {n: f for n, f in ((f.name, f) for f in folders) if n in subscribed}
        else:
            shown = {f.name: f for f in folders}
        show_subscribed = "SUBSCRIBED" in command.selection or "SUBSCRIBED" in command.returns
        for name, attributes in self._listing(shown, {f.name for f in folders}, command):
            if "SPECIAL-USE" in command.selection and not set(attributes) & set(SPECIAL_USES):
                continue
            if show_subscribed and name in subscribed:
                attributes.append("\\Subscribed")
            self._list_line(b"LIST", attributes, name)
        return b"LIST completed"

    async def cmd_LSUB(self, command):
        if command.pattern == "":
            self.untagged(b'LSUB (\\Noselect) "/" ""')
            return b"LSUB completed"
        folders = await self.account.folders()
        subscribed = {f.name for f in folders if f.subscribed}
        regex = pattern_regex(command.reference, command.pattern)
        shown = {n for n in subscribed if regex.match(n)}
        if command.pattern.endswith("%"):
            for level in hierarchy(subscribed) - subscribed:
                if regex.match(level):
                    shown.add(level)
        for name in _inbox_first(shown):
            self._list_line(b"LSUB", [] if name in subscribed else ["\\Noselect"], name)
        return b"LSUB completed"

    def _listing(self, shown: dict, existing: set, command):
        """(name, attributes) of each folder the patterns match, and each level above."""
        out = {}
        levels = hierarchy(existing)
        for pattern in command.patterns:
            regex = pattern_regex(command.reference, pattern)
            for name, folder in shown.items():
                if regex.match(name):
                    out[name] = self._attributes(folder, levels)
            if pattern.endswith("%") and "SUBSCRIBED" not in command.selection:
                for level in levels - existing:
                    if regex.match(level):
                        out[level] = ["\\Noselect", "\\HasChildren"]
        return [(name, out[name]) for name in _inbox_first(out)]

    @staticmethod
    def _attributes(folder, levels) -> list[str]:
        attributes = ["\\HasChildren" if folder.name in levels else "\\HasNoChildren"]
        if folder.special_use:
            attributes.append(folder.special_use)
        return attributes

    def _list_line(self, kind: bytes, attributes, name: str):
        self.untagged(kind + b" (" + " ".join(attributes).encode() + b') "/" '
                      + mailbox_name(name))

    # --- CREATE and the rest ----------------------------------------------------------------
    async def cmd_CREATE(self, command):
        special_use = None
        if command.use:
            wanted = ["\\" + u.lstrip("\\").capitalize() for u in command.use]
            if len(wanted) != 1 or wanted[0] not in SPECIAL_USES:
                raise no(b"[USE-ATTR] Supported: one of " + " ".join(SPECIAL_USES).encode())
            special_use = wanted[0]
        name = command.mailbox.rstrip(DELIMITER)
        if not name or name.upper() == mailboxes.INBOX:
            raise no(b"[ALREADYEXISTS] Mailbox already exists")
        await self._change(self.account.create(name, special_use))
        return b"CREATE completed"

    async def cmd_DELETE(self, command):
        await self._change(self.account.delete(command.mailbox))
        return b"DELETE completed"

    async def cmd_RENAME(self, command):
        await self._change(self.account.rename(command.old, command.new))
        return b"RENAME completed"

    async def cmd_SUBSCRIBE(self, command):
        await self._change(self.account.subscribe(command.mailbox, True))
        return b"SUBSCRIBE completed"

    async def cmd_UNSUBSCRIBE(self, command):
        await self._change(self.account.subscribe(command.mailbox, False))
        return b"UNSUBSCRIBE completed"

    @staticmethod
    async def _change(d):
        try:
            return await d
        except Conflict:
            raise no(b"[ALREADYEXISTS] Mailbox already exists or cannot be changed") from None
        except NotFound:
            raise no(NONEXISTENT) from None

    async def cmd_STATUS(self, command):
        status = await self.account.status(command.mailbox, command.items)
        if status is None:
            raise no(NONEXISTENT)
        items = " ".join(f"{k} {v}" for k, v in status.items()).encode()
        self.untagged(b"STATUS " + mailbox_name(command.mailbox) + b" (" + items + b")")
        return b"STATUS completed"

    # --- APPEND ----------------------------------------------------------------------------
    async def cmd_APPEND(self, command):
        if len(command.message) > self.imap_config.max_append_size:
            raise no(replies.IMAP_TOO_BIG)
        try:
            folder, info = await self.account.append(command.mailbox, command.message,
                                                     command.flags, command.date)
        except NotFound:
            raise no(TRYCREATE) from None
        except OverQuota:
            raise no(replies.IMAP_OVER_QUOTA) from None
        self.log.info("APPEND to {box}: uid {uid}", box=folder.name, uid=info.uid)
        return b"[APPENDUID %d %d] APPEND completed" % (folder.uidvalidity, info.uid)

    # --- QUOTA (RFC 9208): one root "" per account, STORAGE in units of 1024 octets --------
    async def _quota_line(self):
        used, limit = await self.account.quota()
        if limit is None:
            return None
        return b'QUOTA "" (STORAGE %d %d)' % ((used + 1023) // 1024, limit // 1024)

    async def cmd_GETQUOTAROOT(self, command):
        if await self.account.find(command.mailbox) is None:
            raise no(NONEXISTENT)
        line = await self._quota_line()
        self.untagged(b"QUOTAROOT " + mailbox_name(command.mailbox) + (b' ""' if line else b""))
        if line:
            self.untagged(line)
        return b"GETQUOTAROOT completed"

    async def cmd_GETQUOTA(self, command):
        line = await self._quota_line() if command.root == b"" else None
        if line is None:
            raise no(b"[NONEXISTENT] No such quota root")
        self.untagged(line)
        return b"GETQUOTA completed"

    async def cmd_SETQUOTA(self, command):
        raise no(b"[NOPERM] Quotas are set by the administrator (mailstack account quota)")


def _inbox_first(names):
    return sorted(names, key=lambda n: (n != mailboxes.INBOX, n))
