"""FETCH (RFC 3501 §6.4.5, §7.4.2): responses written from one batched read per 500 messages.

Why this shape: FLAGS, UID, RFC822.SIZE, INTERNALDATE and MODSEQ (RFC 7162; CHANGEDSINCE
and VANISHED in ``imap_condstore``) come from the session's view and
cost no query; ENVELOPE and BODYSTRUCTURE come from the structure computed when the
message was stored (``mailstack.message.structure``); a section is a byte slice of the
stored message, never a re-serialisation, so ``BODY[]`` is exactly ``RFC822.SIZE``
octets.  Bodies are read in batches of at most BATCH messages and BATCH_BYTES octets, and
each batch waits until the client has read the previous one; a literal over STREAM_OVER
is written in CHUNK pieces, each after the client has read the one before, never copied
into one response (``streaming``, shared with POP3 RETR).  So ``FETCH 1:* BODY[]`` on a
folder of 25 MB messages costs about one message of memory, not a batch of them plus the
transport's copy (issue 13).

A message another session expunged (still in our view, gone from the store) is answered
with what the view knows and left out of body reads; the tagged reply then says
``NO [EXPUNGEISSUED]`` (RFC 2180 §4.1.2, RFC 5530).

Security: a FETCH reaches only the messages of the session's view (the selected folder of
the logged-in account), and sets ``\\Seen`` only in a folder selected read-write; memory is
bounded per batch and a large literal is written only as fast as the client reads it, so a
client that reads slowly holds about one message in memory.  Not here: how often a client
may FETCH (no rate limit).
"""

from __future__ import annotations

from mailstack.message.header_fields import selected_lines
from mailstack.message.structure import Part, analyse
from mailstack.protocols import imap_body
from mailstack.protocols.imap_fetch_items import FetchItem
from mailstack.protocols.imap_replies import no
from mailstack.protocols.streaming import stored_ranges, write_paced
from mailstack.store import body_ranges, imap_store
from mailstack.store.body_ranges import STREAM_OVER

BATCH = 500                   # messages per read
BATCH_BYTES = 4 * 1024 * 1024   # octets of bodies per read (one larger message reads alone)
FROM_VIEW = frozenset({"FLAGS", "UID", "INTERNALDATE", "RFC822.SIZE", "MODSEQ"})
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
        chosen, items = await self.fetch_with_modseq(command, chosen, items)
        now_seen = set()
        if view.rw and marks_seen(items):
            now_seen = await self._mark_seen(chosen)
        if any(i.name == "FLAGS" for i in items):
            now_seen = set()
        if all(i.name in FROM_VIEW for i in items):
            await self._write(chosen, items, {}, now_seen)
            return b"FETCH completed"
        bodies = any(i.name in NEEDS_BODY for i in items)
        structures = any(needs_structure(i) for i in items)
        missing = 0
        for batch in batches(chosen, BATCH_BYTES if bodies else None):
            data = await self._read(batch, items, bodies, structures)
            present = [(seq, m) for seq, m in batch if m.id in data]
            missing += len(batch) - len(present)
            await self._write(present, items, data, now_seen)
            del data
            await self.writable()
            if self.transport.disconnecting:
                return None
        if missing:
            raise no(b"[EXPUNGEISSUED] Some of the requested messages no longer exist")
        return b"FETCH completed"

    async def _read(self, batch, items, bodies: bool, structures: bool) -> dict:
        """{message id: _Loaded} for the batch's messages still stored.  A message over
        STREAM_OVER is not read whole: its sections are streamed by their spans."""
        db = self.db
        # {id: UID}: a row with another UID under the same id is not ours (imap_store).
        large = {m.id: m.uid for _, m in batch if m.size > STREAM_OVER} if bodies else {}
        small = {m.id: m.uid for _, m in batch if m.id not in large}
        found = await db.read(imap_store.fetch_data, small, bodies, structures) if small else {}
        loaded = {mid: _Loaded(mid, *row) for mid, row in found.items()}
        if large:
            found = await db.read(imap_store.fetch_data, large, False, True)
            for mid, (_raw, json) in found.items():
                if json is None:           # no stored structure: read it whole after all
                    row = (await db.read(imap_store.fetch_data, {mid: large[mid]}, True,
                                         True)).get(mid)
                    if row is not None:
                        loaded[mid] = _Loaded(mid, *row)
                    continue
                loaded[mid] = message = _Loaded(mid, None, json)
                await self._read_headers(message, items)
        return loaded

    async def _read_headers(self, message, items) -> None:
        """The headers HEADER.FIELDS picks lines from, for a message read by spans."""
        for item in items:
            section = getattr(item, "section", None)
            if section is None or not section.text.upper().startswith("HEADER.FIELDS"):
                continue
            span = message.structure.span(section.part, section.text)
            if span is not None and span not in message.headers:
                message.headers[span] = await self.db.read(
                    body_ranges.read_range, message.id, *span) or b""

    async def _mark_seen(self, chosen) -> set[int]:
        """The seqs whose \\Seen this FETCH set.  When another session changed the folder
        (the view is dirty), the view's \\Seen may be stale: every message is marked."""
        view = self.view
        ids = [m.id for _, m in chosen if view.dirty or "\\Seen" not in m.flags]
        if not ids:
            return set()
        changed = await self.db.run(imap_store.mark_seen, view.folder.id, ids)
        view.apply_flags(changed)
        return {seq for seq, m in chosen if m.id in changed}

    async def _write(self, chosen, items, data, now_seen) -> None:
        self.view.tell_keywords(self.untagged)
        pending = []
        for seq, info in chosen:
            info = self.view.infos[seq - 1] if seq <= len(self.view.infos) else info
            message = data.get(info.id)
            fetched = [self.fetch_item(item, info, message) for item in items]
            if seq in now_seen:
                fetched.append(b"FLAGS (" + self.view.flags_of(info) + b")")
            pending.append(b"* %d FETCH (" % seq)
            for n, part in enumerate(fetched):
                if n:
                    pending.append(b" ")
                if isinstance(part, bytes):
                    pending.append(part)
                    continue
                label, octets = part                  # a literal: streamed when long
                pending.append(label + b" {%d}\r\n" % len(octets))
                if isinstance(octets, bytes) and len(octets) < STREAM_OVER:
                    pending.append(octets)
                    continue
                self.transport.writeSequence(pending)
                pending = []
                sent = (await self._stream_span(octets) if isinstance(octets, Span)
                        else await write_paced(self, octets))
                if not sent:
                    return
            pending.append(b")\r\n")
        if pending:
            self.transport.writeSequence(pending)

    async def _stream_span(self, span) -> bool:
        """Read and write a large message's section a RANGE at a time.  If the message
        vanishes meanwhile (expunged elsewhere), the literal promised cannot be kept:
        the connection is closed (RFC 3501 §7.4.1 allows no shorter literal)."""
        async for octets in stored_ranges(self.db, span.message_id, span.start, span.end):
            if octets is None:
                self.log.info("message {id} vanished during FETCH; closing", id=span.message_id)
                self.send(b"* BYE [UNAVAILABLE] The message was removed while it was sent")
                self.close()
                return False
            if not await write_paced(self, octets):
                return False
        return True

    def fetch_item(self, item, info, message) -> bytes:
        name = item.name
        if name == "FLAGS":
            return b"FLAGS (" + self.view.flags_of(info) + b")"
        if name == "UID":
            return b"UID %d" % info.uid
        if name == "MODSEQ":
            return b"MODSEQ (%d)" % self.view.modseq_of(info)
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
            return b"RFC822", message.section((), "")
        if name in ("RFC822.HEADER", "RFC822.TEXT"):
            text = name.split(".", 1)[1]
            return name.encode(), message.section((), text)
        return self._section(item, message)

    @staticmethod
    def _section(item, message) -> tuple[bytes, bytes]:
        section = item.section
        data = message.section(section.part, section.text, section.fields)
        if data is None:
            data = b""       # a part that does not exist is empty (RFC 3501 §6.4.5)
        if item.partial is not None:
            start, length = item.partial
            data = data[start:start + length]
        return item.label(), data


class Span:
    """A section of a large message, by where it lies in the stored message; sliced
    like the bytes it stands for, read only when written (store/body_ranges.py)."""

    __slots__ = ("message_id", "start", "end")

    def __init__(self, message_id: int, start: int, end: int):
        self.message_id, self.start, self.end = message_id, start, max(start, end)

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, piece: slice) -> "Span":
        start, end, _ = piece.indices(len(self))
        return Span(self.message_id, self.start + start, self.start + max(start, end))


def batches(chosen, max_bytes: int | None):
    """``chosen`` cut into reads of at most BATCH messages and, when bodies are read,
    ``max_bytes`` octets (by the view's sizes); a message larger than that reads alone."""
    batch, size = [], 0
    for entry in chosen:
        grows = entry[1].size if max_bytes is not None else 0
        if batch and (len(batch) >= BATCH or (max_bytes is not None and size + grows > max_bytes)):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += grows
    if batch:
        yield batch


class _Loaded:
    """A fetched message: its stored bytes (when read, or read by spans: ``raw`` None and
    a structure) and its structure."""

    def __init__(self, message_id: int, raw: bytes | None, structure_json: str | None):
        self.id, self.raw = message_id, raw
        self._json = structure_json
        self._structure = None
        self.headers = {}         # span → header bytes, for HEADER.FIELDS of a large message

    @property
    def structure(self) -> Part:
        if self._structure is None:
            self._structure = (Part.from_json(self._json) if self._json is not None
                               else analyse(self.raw or b""))
        return self._structure

    def section(self, part, text, fields=()):
        """The section's bytes, or its Span when the message is read by spans."""
        if self.raw is not None:
            if not part and not text:
                return self.raw                 # BODY[]: no structure needed
            return self.structure.section(self.raw, part, text, tuple(fields))
        span = self.structure.span(part, text)
        if span is None:
            return None
        if text.upper().startswith("HEADER.FIELDS"):
            return selected_lines(self.headers.get(span, b""), tuple(fields),
                                  text.upper() == "HEADER.FIELDS")
        return Span(self.id, *span)

