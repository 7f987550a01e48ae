"""FETCH (RFC 3501 §6.4.5, §7.4.2): responses written from one batched read per 500 messages.

Why this shape: FLAGS, UID, RFC822.SIZE and INTERNALDATE come from the session's view and
cost no query; ENVELOPE and BODYSTRUCTURE come from the structure computed when the
message was stored (``mailstack.message.structure``); a section is a byte slice of the
stored message, never a re-serialisation, so ``BODY[]`` is exactly ``RFC822.SIZE``
octets.  Bodies are read in batches and each batch waits until the client has read the
previous one, so ``FETCH 1:* BODY[]`` on a large folder costs one batch of memory.

A message another session expunged (still in our view, gone from the store) is answered
with what the view knows and left out of body reads; the tagged reply then says
``NO [EXPUNGEISSUED]`` (RFC 2180 §4.1.2, RFC 5530).
"""

from __future__ import annotations

from mailstack.message.structure import Part, analyse
from mailstack.protocols import imap_body
from mailstack.protocols.imap_fetch_items import FetchItem
from mailstack.protocols.imap_format import literal
from mailstack.protocols.imap_replies import no
from mailstack.store import imap_store

BATCH = 500
FROM_VIEW = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE"})
NEEDS_BODY = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT", "BODY[]"})
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
          b"Nov", b"Dec")


def internal_date(moment) -> bytes:
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        moment.day, MONTHS[moment.month - 1], moment.year, moment.hour, moment.minute,
        moment.second)


def marks_seen(items) -> bool:
    """BODY[…] (not .PEEK), RFC822 and RFC822.TEXT set \\Seen (RFC 3501 §6.4.5)."""
    return any((i.name == "BODY[]" and not i.peek) or i.name in ("RFC822", "RFC822.TEXT")
               for i in items)


def needs_structure(item) -> bool:
    """All but the whole message (``BODY[]``, ``RFC822``) and the view's facts."""
    if item.name == "BODY[]":
        return bool(item.section.part or item.section.text)
    return item.name not in FROM_VIEW and item.name != "RFC822"


class FetchCommand:
    async def cmd_FETCH(self, command):
        view = self.view
        items = list(command.items)
        if command.uid and not any(i.name == "UID" for i in items):
            items.insert(0, FetchItem("UID"))    # UID FETCH always answers the UID
        chosen = view.select(command.sequence, command.uid)
        now_seen = set()
        if view.rw and marks_seen(items):
            now_seen = await self._mark_seen(chosen)
        if any(i.name == "FLAGS" for i in items):
            now_seen = set()
        if all(i.name in FROM_VIEW for i in items):
            self._write(chosen, items, {}, now_seen)
            return b"FETCH completed"
        bodies = any(i.name in NEEDS_BODY for i in items)
        structures = any(needs_structure(i) for i in items)
        missing = 0
        for start in range(0, len(chosen), BATCH):
            batch = chosen[start:start + BATCH]
            data = await self.parts.db.read(imap_store.fetch_data, [m.id for _, m in batch],
                                            bodies, structures)
            present = [(seq, m) for seq, m in batch if m.id in data]
            missing += len(batch) - len(present)
            self._write(present, items, data, now_seen)
            await self.writable()
            if self.transport.disconnecting:
                return None
        if missing:
            raise no(b"[EXPUNGEISSUED] Some of the requested messages no longer exist")
        return b"FETCH completed"

    async def _mark_seen(self, chosen) -> set[int]:
        """The seqs whose \\Seen this FETCH set.  When another session changed the folder
        (the view is dirty), the view's \\Seen may be stale: every message is marked."""
        view = self.view
        ids = [m.id for _, m in chosen if view.dirty or "\\Seen" not in m.flags]
        if not ids:
            return set()
        changed = await self.parts.db.run(imap_store.mark_seen, view.folder.id, ids)
        view.apply_flags(changed)
        return {seq for seq, m in chosen if m.id in changed}

    def _write(self, chosen, items, data, now_seen) -> None:
        self.view.tell_keywords(self.untagged)
        chunks = []
        for seq, info in chosen:
            info = self.view.infos[seq - 1] if seq <= len(self.view.infos) else info
            message = _Loaded(*data[info.id]) if info.id in data else None
            parts = [self.fetch_item(item, info, message) for item in items]
            if seq in now_seen:
                parts.append(b"FLAGS (" + self.view.flags_of(info) + b")")
            chunks.append(b"* %d FETCH (" % seq + b" ".join(parts) + b")\r\n")
        if chunks:
            self.transport.writeSequence(chunks)

    def fetch_item(self, item, info, message) -> bytes:
        name = item.name
        if name == "FLAGS":
            return b"FLAGS (" + self.view.flags_of(info) + b")"
        if name == "UID":
            return b"UID %d" % info.uid
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % info.size
        if name == "INTERNALDATE":
            return b"INTERNALDATE " + internal_date(info.internal_date)
        if name == "ENVELOPE":
            return b"ENVELOPE " + imap_body.envelope(message.structure.envelope)
        if name in ("BODY", "BODYSTRUCTURE"):
            return name.encode() + b" " + imap_body.bodystructure(
                message.structure, extended=name == "BODYSTRUCTURE")
        if name == "RFC822":
            return b"RFC822 " + literal(message.raw)
        if name in ("RFC822.HEADER", "RFC822.TEXT"):
            text = name.split(".", 1)[1]
            return name.encode() + b" " + literal(message.section((), text))
        return self._section(item, message)

    @staticmethod
    def _section(item, message) -> bytes:
        section = item.section
        data = message.section(section.part, section.text, section.fields)
        if data is None:
            data = b""       # a part that does not exist is empty (RFC 3501 §6.4.5)
        if item.partial is not None:
            start, length = item.partial
            data = data[start:start + length]
        return item.label() + b" " + literal(data)


class _Loaded:
    """A fetched message: its stored bytes (when read) and its structure."""

    def __init__(self, raw: bytes | None, structure_json: str | None):
        self.raw = raw
        self._json = structure_json
        self._structure = None

    @property
    def structure(self) -> Part:
        if self._structure is None:
            self._structure = (Part.from_json(self._json) if self._json is not None
                               else analyse(self.raw or b""))
        return self._structure

    def section(self, part, text, fields=()) -> bytes | None:
        if not part and not text:
            return self.raw                     # BODY[]: no structure needed
        return self.structure.section(self.raw, part, text, tuple(fields))

