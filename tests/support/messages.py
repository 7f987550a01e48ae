"""Large messages for the memory tests of issue 13, and the spool files they leave open."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from tests.support.waiting import eventually


def big_body(size: int = 25_000_000) -> bytes:
    """A multipart message body of ``size`` octets (after its per-client header): a few MB
    of text, which SEARCH indexes, and a base64 attachment, as large mail mostly is."""
    text = b"".join(b"line %07d of the long text part, words for search\r\n" % i
                    for i in range(80_000))
    head = (b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text +
            b"--b\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    tail = b"\r\n--b--\r\n"
    room = (size - len(head) - len(tail)) // 78 * 57
    encoded = base64.encodebytes(bytes(range(256)) * (room // 256 + 1))[:room // 57 * 77]
    encoded = encoded.replace(b"\n", b"\r\n")
    body = head + encoded + tail
    return body + b"x" * (size - len(body) - 2) + b"\r\n" if len(body) + 2 <= size else body


def open_spool_files(server) -> int:
    """Unlinked files this process holds open in the server's spool directory."""
    count = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(server.built.spool_dir)) and target.endswith("(deleted)"):
            count += 1
    return count


def spools_return_to(server, baseline: int) -> None:
    eventually(lambda: open_spool_files(server) <= baseline, 10, "the spool closed")
