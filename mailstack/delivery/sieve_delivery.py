"""Each recipient's Sieve script at final delivery, acted on in the delivery's transaction.

Why here: the interpreter (``sieve/interpreter.py``) only decides; the copies, the
redirected and answered mail and the reply records must commit with the message or not
at all (issue 19): a crash mid-delivery leaves neither the message nor a vacation reply,
and a store failure (451) leaves nothing for the retry to duplicate.  So the script runs
inside ``routing.store_message``'s transaction, and its actions are rows of that same
transaction (``sieve_actions.py``: redirect, vacation, the DSN of a reject).

What it costs: the RCPT route's one statement also reads each account's active script
version -- its id and update time (``Accepted.sieve``, ``store/directory.py``).  Mail to
accounts without one takes the old path (``spam_copies.deliver``); for the others the
compiled script is taken from the process's cache by that version (the text is read, in
the delivery's transaction, only on a miss), and each runs on one ``MessageView`` of the
message: no statement more than without Sieve for a script that keeps or discards.  The
version is the one active when the recipient was accepted: a script changed between RCPT
and the end of DATA applies from the next message.

How it composes with spam filing: the implicit (and explicit) ``keep`` files where SPAM
Blocker, the customer's sender lists or DMARC's quarantine would have filed the copy
(Junk or INBOX, tagged or not); an explicit ``fileinto`` wins over that folder.
``fileinto`` to a missing folder without ``:create`` keeps the message (RFC 5228 §2.10.6)
and logs why.  A script that fails keeps the message in INBOX (``Outcome.failed``); the
error is logged once per message, with the account and the script's name.

Reject/ereject (RFC 5429): on port 25 with one recipient that is one account, nothing is
stored and the client gets a 550 at the end of DATA (``Refused``, turned into the reply
by the protocol); otherwise the sender gets a DSN (``delivery/bounce.py``).

Standards: RFC 5228 §2.10 (actions), RFC 5429 §2.1-§2.2, RFC 5490 §3.2, RFC 5232 §5.
Security: a script is a customer's, hostile input: the interpreter bounds its cost; a
reject's reason is made printable and cut before it reaches the SMTP reply or the log;
redirects are loop-protected and limited (``sieve_actions.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from twisted.logger import Logger

from mailstack import replies
from mailstack.delivery import sieve_actions, spam_copies
from mailstack.sieve import scripts
from mailstack.sieve.actions import Discard, FileInto, Keep, Redirect, Reject, Vacation
from mailstack.sieve.interpreter import ScriptCache
from mailstack.sieve.message_view import MessageView
from mailstack.store import mailboxes, sieve_filing, sieve_scripts, spam_filing

HEAD_LIMIT = 64 * 1024      # octets of the message read for its header fields
REASON_LIMIT = 200          # characters of a reject's reason in the SMTP reply
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")
log = Logger(namespace="mailstack.sieve")


@dataclass(frozen=True)
class Version:
    """The active script of an account as the RCPT route read it (``Accepted.sieve``):
    the compiled-script cache's key is (``id``, ``updated_at``)."""
    account_id: int
    id: int
    updated_at: object


class _Who:
    """Names the recipient and the script in a log line; the script's name is read only
    when a line is written (the rare path)."""

    def __init__(self, conn, rcpt: str, script_id: int):
        self.conn, self.rcpt, self.script_id = conn, rcpt, script_id
        self.name: str | None = None

    def __str__(self) -> str:
        if self.name is None:
            self.name = sieve_scripts.name_of(self.conn, self.script_id)
        return f"<{self.rcpt}> script {self.name!r}"


@dataclass(frozen=True)
class Refused:
    """The message was refused at DATA time by its one recipient's script."""
    reply: replies.Reply


@dataclass
class Sieve:
    """What every delivery shares: the compiled scripts, and what the actions need (the
    host name of DSNs and replies, SRS for redirects, the DKIM signer of replies)."""
    hostname: str
    signer: object
    srs: object = None
    cache: ScriptCache = field(default_factory=ScriptCache)

    def for_message(self, sender, accepted, spool, received, queue_id, *, at_data: bool,
                    seen: bytes = b""):
        """The run of one message (None when no recipient has a script).  ``seen``: the
        fields of ours the local copies start with (Return-Path, Received,
        Authentication-Results, X-Spam-*), which the scripts see as well."""
        if not any(getattr(r, "sieve", ()) for r in accepted):
            return None
        return SieveRun(self, sender, accepted, spool, received, queue_id, at_data, seen)


class SieveRun:
    """The scripts of one message's recipients; ``deliver`` is called in the store's
    transaction (again, from the start, when the group commit re-runs it alone)."""

    def __init__(self, sieve: Sieve, sender, accepted, spool, received, queue_id,
                 at_data: bool, seen: bytes = b""):
        self.sieve, self.sender, self.accepted = sieve, sender, accepted
        self.seen = seen
        self.spool, self.received, self.queue_id = spool, received, queue_id
        self.at_data = at_data       # port 25, not logged in: a reject may be a 550
        self.notes: list[str] = []       # what the log says after the COMMIT
        self.problems: list[str] = []    # the same, at warn level: the customer's errors
        self.refusal: Refused | None = None
        self.queued = False

    def deliver(self, conn, local, prepared, at, *, junk=False, screening=None) -> list:
        """Store the local copies: accounts without a script as ``spam_copies`` does,
        the others as their scripts say."""
        self.notes, self.problems, self.refusal, self.queued = [], [], None, False
        screening = spam_copies.worth_asking(screening, self.accepted)
        versions = {account_id: Version(account_id, script_id, at_)
                    for r in self.accepted
                    for account_id, script_id, at_ in getattr(r, "sieve", ())}
        active = {i: versions[i] for i in local if i in versions}
        plain = [i for i in local if i not in active]
        stored = (spam_copies.deliver(conn, plain, prepared, at, junk=junk,
                                      screening=screening) if plain else [])
        if not active:
            return stored
        filings = (spam_filing.choices(conn, list(active), screening)
                   if screening is not None else {})
        view = self._view()
        for account_id, script in active.items():
            stored += self._run(conn, script, view, prepared, at, junk,
                                filings.get(account_id, spam_filing.PLAIN), screening)
        return stored

    def _view(self) -> MessageView:
        head = self.spool.head(HEAD_LIMIT)
        end = head.find(b"\r\n\r\n")
        header = self.seen + (head[:end] if end >= 0 else head)
        return MessageView(header, size=self.spool.size, envelope_from=self.sender,
                           body=lambda limit: _body(self.spool, end, limit))

    def _recipient(self, account_id: int) -> str:
        return next(r.address for r in self.accepted if account_id in r.account_ids)

    def _run(self, conn, script, view, prepared, at, junk, filing, screening) -> list:
        compiled = self.sieve.cache.get(
            (script.id, script.updated_at),
            lambda: scripts.parse(sieve_scripts.content(conn, script.id)))
        rcpt = self._recipient(script.account_id)
        mine = view.for_recipient(rcpt)
        outcome = compiled.run(mine, mailboxes=sieve_filing.FolderNames(conn, script.account_id))
        who = _Who(conn, rcpt, script.id)
        if outcome.error is not None:
            self.problem(f"{who} failed, kept in INBOX: {outcome.error}")
            filing = spam_filing.Filing(tag=filing.tag, note=filing.note)   # INBOX
            junk = False
        self.problems.extend(f"{who}: {note}" for note in outcome.notes)
        copy = _Copy(prepared, filing, screening)
        actions = list(outcome.actions)
        files = [a for a in actions if isinstance(a, (Keep, FileInto))]
        stored, kept = [], False
        for action in files:
            folder = self._folder(conn, script, action, junk or filing.junk, at, who)
            if folder is None:
                continue
            if folder == "keep":
                if not kept:
                    kept = True
                    stored += self._keep(conn, script.account_id, copy, at, junk or filing.junk,
                                         action.flags)
                continue
            stored.append(sieve_filing.file_copy(conn, folder, *copy.octets(), at,
                                                 flags=action.flags))
        delivered = bool(stored)
        for action in actions:
            if isinstance(action, Redirect):
                delivered |= self._redirect(conn, script, mine, action, at, who)
            elif isinstance(action, Reject):
                self._reject(conn, script, rcpt, action, at, who)
                delivered = True
            elif isinstance(action, Vacation):
                self._vacation(conn, script, mine, action, at, who)
            elif isinstance(action, Discard):
                self.note(f"{who}: discarded")
                delivered = True
        if not delivered:       # a refused redirect must not lose the message
            stored += self._keep(conn, script.account_id, copy, at, junk or filing.junk, ())
        return stored

    @staticmethod
    def _keep(conn, account_id, copy, at, junk, flags) -> list:
        """The keep: INBOX, or Junk when spam filing chose it; without flags (the common
        case) by the statement delivery without a script uses (``mailboxes.deliver``)."""
        if not flags:
            body, facts = copy.octets()
            return mailboxes.deliver(conn, [account_id], body, at, facts, junk=junk)
        folder = sieve_filing.kept_folder(conn, account_id, junk)
        return [sieve_filing.file_copy(conn, folder, *copy.octets(), at, flags=flags)]

    def _folder(self, conn, script, action, junk, at, who):
        """The folder id of a FileInto, "keep" for a Keep, or for a fileinto that cannot
        be done (missing without :create): "keep", logged."""
        if isinstance(action, Keep):
            return "keep"
        found = sieve_filing.named_folder(conn, script.account_id, action.mailbox,
                                          action.create, at)
        if found is None:
            self.problem(f"{who}: fileinto {action.mailbox!r}: no such folder"
                      f"{'' if action.create else ' (no :create)'}; kept instead")
            return "keep"
        return found

    def _redirect(self, conn, script, view, action, at, who) -> bool:
        why_not = sieve_actions.redirect(conn, self, script, view, action.address, at)
        if why_not is not None:
            self.problem(f"{who}: redirect to <{action.address}> refused: {why_not}")
            return False
        self.queued = True
        return True

    def _reject(self, conn, script, rcpt, action, at, who) -> None:
        reason = _printable(action.reason)
        if self.at_data and self._alone(script.account_id):
            self.refusal = Refused(replies.SIEVE_REJECT.format(address=rcpt, reason=reason))
            self.note(f"{who}: rejected at DATA: {reason}")
            return
        if sieve_actions.reject_notice(conn, self, rcpt, reason, at):
            self.queued = True
        self.note(f"{who}: rejected, DSN to <{self.sender}>: {reason}")

    def _alone(self, account_id: int) -> bool:
        """Whether the message has just this one recipient, who is just this account."""
        return (len(self.accepted) == 1 and tuple(self.accepted[0].account_ids) == (account_id,)
                and not self.accepted[0].remote and not getattr(self.accepted[0], "forward", ()))

    def _vacation(self, conn, script, view, action, at, who) -> None:
        why_not = sieve_actions.vacation(conn, self, script, view, action, at)
        if why_not is None:
            self.queued = True
            self.note(f"{who}: vacation reply to <{self.sender}>")
        else:
            self.note(f"{who}: no vacation reply: {why_not}")

    def note(self, text: str) -> None:
        self.notes.append(text)

    def problem(self, text: str) -> None:
        self.problems.append(text)


class _Copy:
    """The account's copy: the prepared one, or its spam-filing variant (tagged, noted)."""

    def __init__(self, prepared, filing, screening):
        self.prepared, self.filing, self.screening = prepared, filing, screening

    def octets(self):
        body, facts = self.prepared
        if not (self.filing.tag or self.filing.note) or self.screening is None:
            return body, facts
        whole = body if isinstance(body, (bytes, bytearray)) else body.read()
        return spam_copies.variant(whole, self.screening.header, self.filing), None


def _body(spool, end: int, limit: int) -> bytes | None:
    """At most ``limit`` octets of the body (after the blank line at ``end``)."""
    if end < 0:
        return None
    start, offset, pieces, have = end + 4, 0, [], 0
    for piece in spool.pieces(64 * 1024):
        if offset + len(piece) > start:
            part = piece[max(0, start - offset):]
            pieces.append(part)
            have += len(part)
            if have >= limit:
                break
        offset += len(piece)
    return b"".join(pieces)[:limit]


def _printable(reason: str) -> str:
    """A reject's reason, one line of printable ASCII, short (it goes into a reply)."""
    text = _UNPRINTABLE.sub(" ", reason).strip()
    return (text[:REASON_LIMIT] or "no reason given")


def after_commit(stored, run: SieveRun, on_queued, kicked: bool):
    """After the COMMIT: log what the scripts did (once per message), wake the queue for
    what they queued, and hand on the refusal of a reject at DATA time."""
    for text in run.problems:
        log.warn("{queue_id}: sieve: {note}", queue_id=run.queue_id, note=text)
    for text in run.notes:
        log.info("{queue_id}: sieve: {note}", queue_id=run.queue_id, note=text)
    if run.queued and not kicked and on_queued is not None:
        on_queued()
    return run.refusal if run.refusal is not None else stored
