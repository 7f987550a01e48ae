"""The search text of a large message costs bounded memory and keeps its first megabytes.

Why these tests: ``body_text`` decoded every text part whole and split it into words, so a
25 MB text/plain cost 366 MB (issue 13, case 5).  It now reads the text parts found by the
MIME structure, at most TEXT_INPUT octets of them, and keeps TEXT_LIMIT characters.
"""

from __future__ import annotations

import base64
import tracemalloc

import pytest

from mailstack.message.structure import analyse
from mailstack.store import search_facts
from mailstack.store.search_facts import TEXT_LIMIT, body_text

WORDS = "Grüße aus Köln, ein langer Text für die Suche"
SIZE = 25_000_000


def plain(text: bytes, encoding: str = "8bit") -> bytes:
    return (b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: "
            + encoding.encode() + b"\r\n\r\n" + text)


def big(kind: str) -> bytes:
    line = WORDS.encode() + b"\r\n"
    if kind == "8bit":
        return plain(line * (SIZE // len(line)))
    if kind == "base64":
        encoded = base64.encodebytes(line * (SIZE * 3 // 4 // len(line)))
        return plain(encoded.replace(b"\n", b"\r\n"), "base64")
    return (b"Content-Type: text/html; charset=utf-8\r\n\r\n"
            + (b"<p>" + line.strip() + b"</p>\r\n") * (SIZE // (len(line) + 7)))


@pytest.mark.parametrize("kind", ["8bit", "base64", "html"])
def test_a_25_mb_text_part_costs_a_few_megabytes_and_keeps_the_limit(kind):
    raw = big(kind)
    structure = analyse(raw)
    tracemalloc.start()
    try:
        text = body_text(raw, structure)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(text) == TEXT_LIMIT
    assert text.startswith("grüße aus köln, ein langer text für die suche grüße")
    assert peak < 32 * 1024 * 1024, f"{peak >> 20} MB"


def test_text_beyond_the_input_limit_is_not_searched(monkeypatch):
    monkeypatch.setattr(search_facts, "TEXT_INPUT", 100)
    raw = plain(b"early words\r\n" + b"filler\r\n" * 20 + b"late words\r\n")
    text = body_text(raw)
    assert text.startswith("early words filler") and "late" not in text


def test_the_text_of_attached_and_encapsulated_messages_is_searched():
    raw = (b"Content-Type: message/rfc822\r\n\r\n"
           b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nFirst Part\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n\r\nnot text\r\n"
           b"--b\r\nContent-Type: text/html\r\n\r\n<b>Second</b> &amp; part\r\n--b--\r\n")
    assert body_text(raw) == "first part second & part"


def test_a_cut_or_damaged_base64_part_still_gives_its_text():
    encoded = base64.b64encode(b"hello base64 world")
    assert body_text(plain(encoded[:-2] + b"\r\n!!\r\n", "base64")).startswith("hello base64")
    assert body_text(plain(b"a", "base64")) == "a"           # as the email package: kept
