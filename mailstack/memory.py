"""The server process's malloc settings: few heaps, free memory given back four times a second.

Why (issue 16): glibc malloc gives each thread that allocates while another holds a heap
a heap (arena) of its own, up to eight per core, and keeps what is freed in it for reuse.
The server has a reactor thread, two pools of ``[database] threads`` and the hashing
threads; each RETR, FETCH or DATA allocates its octets in one of them and frees them in
another.  Measured (benchmarks/setup.sh, SQLite, threads=4; anonymous memory, Pss_Anon):
55 MB idle, 113 MB after 10 POP3 sessions RETR-ing 200 x 10 KB, 128-139 MB after 50 IMAP
sessions, and it stayed there -- free memory kept in the heaps.  ``malloc_trim`` alone gave
little back: it leaves the top of every heap but the main one, and the dynamic mmap
threshold (raised by every large block freed) lets those tops grow to megabytes.  With at
most two heaps and a ``malloc_trim`` every second: 55 MB idle, 57 after POP3, 61-63 after
IMAP, 62 after 3000 messages on port 25.

Why not fixed ``M_MMAP_THRESHOLD``/``M_TRIM_THRESHOLD`` instead: with the trim they kept
about as little, but fixing the mmap threshold cost IMAP FETCH 10-25 % of its CPU
(``store/allocator.py``).  Why two heaps and not one: most allocations are made under the
GIL anyway, but SQLite, OpenSSL and zlib allocate without it; a second heap keeps them from
queueing on one lock, and measured the same as one.

Why four times a second: between two trims the heaps grow with the work done; with one trim
a second the port 25 load (10 senders, ~540 msg/s) peaked at 88 MB PSS while the process
held 54-56 MB anonymous memory when sampled each second; trimming every 0.25 s, 70 MB, at
the same throughput (benchmarks/compare.sh, 2026-12-03).

Cost: the trim took 0.5 ms on average, 3.5 ms at most (60 MB of heaps, under load), in the
reactor thread: about 0.2 % of it at four a second.  Where the C library is not glibc
(musl), both do nothing.
"""

from __future__ import annotations

from mailstack.repeating import Repeating
from mailstack.store import allocator

HEAPS = 2
TRIM_INTERVAL = 0.25      # seconds

_limited = False


def limit_heaps() -> bool:
    """Limit the process to ``HEAPS`` heaps, once; call it before any thread is started.
    False where the C library cannot (nothing changed)."""
    global _limited
    if not _limited:
        _limited = allocator.limit_heaps(HEAPS)
    return _limited


class ReturnFreeMemory(Repeating):
    """Gives the heaps' free memory back to the system every ``interval`` seconds."""

    def __init__(self, clock, interval: float = TRIM_INTERVAL):
        self.timer, self.interval = clock, interval

    def tick(self):
        allocator.return_free_memory()
