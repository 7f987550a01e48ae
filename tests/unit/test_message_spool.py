"""The DATA spool: lines kept as they arrive, moved to disk past IN_MEMORY, read back whole.

Why these tests: the spool replaced a list of lines joined at the end (issue 13, case 5);
what is stored must be exactly the lines received, CRLF-terminated, with the Received
header in front, whether the spool stayed in memory or moved to a file.
"""

from __future__ import annotations

import os

import pytest

from mailstack.message.spool import IN_MEMORY, RESERVED, Spool, spooled

HEADER = b"Received: from x ([192.0.2.1])\r\n\tby mx (mailstack); Mon, 1 Dec 2025 10:00 +0000\r\n"


def lines(count: int, width: int = 70) -> list[bytes]:
    return [b"%06d " % i + b"x" * (width - 7) for i in range(count)]


@pytest.mark.parametrize("count", [0, 1, 100, IN_MEMORY // 50 * 3], ids=["empty", "one", "small",
                                                                        "on disk"])
def test_lines_come_back_crlf_terminated_behind_the_header(count):
    spool = Spool()
    sent = lines(count)
    for line in sent:
        spool.add_line(line)
    expected = b"".join(line + b"\r\n" for line in sent)
    assert spool.size == len(expected)
    assert spool.read(HEADER) == HEADER + expected
    assert spool.read() == expected                  # read again, without a header
    assert spool.head(10) == expected[:10]
    assert b"".join(spool.with_prefix(HEADER).chunks(4096)) == HEADER + expected
    assert len(spool.with_prefix(HEADER)) == len(HEADER) + len(expected)
    spool.close()
    assert spool.closed


def test_a_large_message_moves_to_a_file_and_close_frees_it():
    spool = Spool()
    for line in lines(IN_MEMORY // 50 * 2):
        spool.add_line(line)
    spool.head(1)                                    # pending lines reach the file
    assert spool._file._rolled                       # on disk, not in memory
    spool.close()
    spool.close()                                    # closing twice is harmless
    assert spool.closed


def test_a_header_longer_than_the_reserved_room_is_still_put_in_front():
    spool = spooled(b"body\r\n")
    header = b"X: " + b"y" * RESERVED + b"\r\n"
    assert spool.read(header) == header + b"body\r\n"


def test_a_large_spool_moves_to_its_directory(tmp_path):
    spool = spooled(b"x" * (IN_MEMORY + 1), str(tmp_path))
    assert os.readlink(f"/proc/self/fd/{spool._file.fileno()}").startswith(str(tmp_path))
    spool.close()
    with pytest.raises(OSError):
        spooled(b"x" * (IN_MEMORY + 1), str(tmp_path / "missing"))


def _without_x(message: bytes) -> tuple[bytes, int]:
    end = message.find(b"\r\n\r\n") + 2
    kept = [f for f in message[:end].split(b"\r\n")[:-1] if not f.startswith(b"X-Forged:")]
    count = message[:end].count(b"X-Forged:")
    return b"\r\n".join(kept) + b"\r\n" + message[end:], count


@pytest.mark.parametrize("whole", [True, False])
def test_remove_fields_reads_the_whole_message_only_when_its_head_holds_one(whole):
    body = b"\r\n".join(lines(2000)) + b"\r\n"
    spool = spooled(b"X-Forged: yes\r\nSubject: s\r\n\r\n" + body)
    seen = spool.read() if whole else spool.head(64)
    assert spool.remove_fields(seen, _without_x) == 1
    assert spool.read() == b"Subject: s\r\n\r\n" + body
    clean = spooled(b"Subject: s\r\n\r\n" + body)
    assert clean.remove_fields(clean.head(64), _without_x) == 0
    assert clean.read() == b"Subject: s\r\n\r\n" + body
