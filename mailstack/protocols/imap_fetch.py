"""FETCH responses, written synchronously from one batched read.

Why ours: Twisted's ``spewMessage`` runs through ``iterateInReactor``, one reactor turn per
message and a ``FileProducer`` per body, which made ``UID FETCH 1:* FLAGS`` on 50,000
messages take seconds; it also ignores ``<partial>`` (#5613) and re-synthesizes headers.
Here each message's response is built in memory from the stored bytes and the batch goes
out in one ``writeSequence``.  The formatters of ENVELOPE and BODYSTRUCTURE are Twisted's.
"""

from __future__ import annotations

from twisted.mail import imap4

from mailstack.protocols.imap_message import _raw_split, header_fields

CHEAP = frozenset({"flags", "internaldate", "rfc822size", "uid"})
MONTHS = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
          b"Nov", b"Dec")


def internal_date(moment) -> bytes:
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        moment.day, MONTHS[moment.month - 1], moment.year, moment.hour, moment.minute,
        moment.second)


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n" % len(data) + data


def section_name(part) -> bytes:
    section = b".".join(str(i + 1).encode() for i in part.part)
    sep = b"." if section else b""
    if part.header:
        section += sep + bytes(part.header)
    elif part.text:
        section += sep + b"TEXT"
    elif part.mime:
        section += sep + b"MIME"
    return b"BODY[" + section + b"]"


class FetchWriter:
    @staticmethod
    def needs_bodies(query) -> bool:
        return any(q.type not in CHEAP for q in query)

    @staticmethod
    def marks_seen(query) -> bool:
        """BODY[...] (not .PEEK), RFC822 and RFC822.TEXT set \\Seen (RFC 3501 §6.4.5)."""
        return any((q.type == "body" and not q.peek and (q.header or q.text or q.mime or q.empty))
                   or q.type in ("rfc822", "rfc822text") for q in query)

    def write_fetch(self, loaded, query, uid, now_seen=frozenset()) -> None:
        """``now_seen``: messages this FETCH marked \\Seen, whose new FLAGS the client is
        told even if it did not ask (RFC 3501 §6.4.5)."""
        chunks = []
        wants_uid = bool(uid) and not any(q.type == "uid" for q in query)
        has_flags = any(q.type == "flags" for q in query)
        for seq, msg in loaded:
            items = [self.fetch_item(q, msg) for q in query]
            if wants_uid:
                items.append(b"UID %d" % msg.info.uid)
            if seq in now_seen and not has_flags:
                items.append(b"FLAGS (" + " ".join(sorted(msg.info.flags)).encode() + b")")
            chunks.append(b"* %d FETCH (" % seq + b" ".join(items) + b")\r\n")
        self.transport.writeSequence(chunks)

    def fetch_item(self, q, msg) -> bytes:
        kind, info = q.type, msg.info
        if kind == "flags":
            return b"FLAGS (" + " ".join(sorted(info.flags)).encode() + b")"
        if kind == "uid":
            return b"UID %d" % info.uid
        if kind == "rfc822size":
            return b"RFC822.SIZE %d" % info.size
        if kind == "internaldate":
            return b"INTERNALDATE " + internal_date(info.internal_date)
        if kind == "body":
            return self.body_item(q, msg)
        if kind == "rfc822":
            return b"RFC822 " + literal(msg.raw())
        if kind == "rfc822header":
            return b"RFC822.HEADER " + literal(_raw_split(msg.raw())[0])
        if kind == "rfc822text":
            return b"RFC822.TEXT " + literal(_raw_split(msg.raw())[1])
        if kind == "envelope":
            return b"ENVELOPE " + imap4.collapseNestedLists([imap4.getEnvelope(msg)])
        if kind == "bodystructure":
            return b"BODYSTRUCTURE " + imap4.collapseNestedLists(
                [imap4.getBodyStructure(msg, True)])
        raise ValueError(f"unsupported FETCH item {kind}")

    @staticmethod
    def body_item(part, msg) -> bytes:
        target = msg
        for index in part.part:
            target = target.getSubPart(index) if target.isMultipart() else None
            if target is None:
                raise imap4.IllegalClientResponse("no such body part")
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
            return b"BODY " + imap4.collapseNestedLists([imap4.getBodyStructure(msg)])
        name = section_name(part)
        if part.partialBegin is not None:
            data = data[part.partialBegin:part.partialBegin + part.partialLength]
            name += b"<%d>" % part.partialBegin
        return name + b" " + literal(data)
