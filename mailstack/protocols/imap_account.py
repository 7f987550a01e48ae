"""The logged-in account as IMAP sees it: its folders, each change one transaction.

Why: the commands in ``imap_folders`` and ``imap_selected`` speak IMAP; this adapter turns
their requests into calls of the store in the thread pool and keeps the names right
(``INBOX`` in any case, the ``/`` hierarchy).  Every method returns a Deferred that fires
after the COMMIT, so a command answers OK only for what is stored.

Security: every call carries the logged-in account's id, so no folder name a client sends
can reach another account's folders; an APPEND is stored under the process's byte budget
and refused over the account's quota (``OverQuota``).  Not here: how many folders an
account may create (not limited).
"""

from __future__ import annotations

from zope.interface import Interface, implementer

from mailstack import clock as clocks
from mailstack.store import imap_store, mailboxes

DELIMITER = "/"


class IMAPAccount(Interface):
    """What the realm hands an IMAP session at login (``imap_account.Account``)."""


def folder_name(name: str) -> str:
    name = name.strip(DELIMITER) if name != DELIMITER else name
    return mailboxes.INBOX if name.upper() == mailboxes.INBOX else name


@implementer(IMAPAccount)
class Account:
    def __init__(self, db, clock, ref):
        self.db, self.clock, self.ref = db, clock, ref

    def now(self):
        return clocks.now(self.clock)

    def folders(self):
        return self.db.read(mailboxes.list_folders, self.ref.id)

    def open(self, name: str, claim_recent: bool):
        """(FolderInfo, [MessageInfo], first recent UID) or None."""
        return self.db.run(imap_store.open_folder, self.ref.id, folder_name(name), claim_recent)

    def find(self, name: str):
        return self.db.read(mailboxes.get_folder, self.ref.id, folder_name(name))

    def create(self, name: str, special_use=None):
        return self.db.run(imap_store.create_with_parents, self.ref.id, folder_name(name),
                           self.now(), DELIMITER, special_use)

    def status(self, name: str, items):
        return self.db.read(imap_store.status, self.ref.id, folder_name(name), items)

    def quota(self):
        """(bytes used, quota in bytes or None) over all the account's folders."""
        return self.db.read(imap_store.quota, self.ref.id)

    def delete(self, name: str):
        return self.db.run(imap_store.delete_folder, self.ref.id, folder_name(name))

    def rename(self, old: str, new: str):
        return self.db.run(imap_store.rename_folder, self.ref.id, folder_name(old),
                           folder_name(new), self.now())

    def subscribe(self, name: str, subscribed: bool):
        return self.db.run(imap_store.set_subscribed, self.ref.id, folder_name(name), subscribed)

    def append(self, name: str, body, flags, date):
        """(FolderInfo, MessageInfo) of the stored message; NotFound, OverQuota.
        ``body``: the message's bytes or its spool; stored under the byte budget."""
        return self.db.body_budget.run(
            len(body), self.db.run, imap_store.append_named, self.ref.id, folder_name(name),
            body, date or self.now(), mailboxes.canonical_flags(flags))
