"""The server process's malloc settings: few heaps, and free memory given back every second.

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

Cost: the trim took 0.5 ms on average, 3.5 ms at most (60 MB of heaps, under load), once a
second in the reactor thread.  Where the C library is not glibc (musl), both do nothing.
"""

from __future__ import annotations

from twisted.application import service
from twisted.internet import task

from mailstack.store import allocator

HEAPS = 2
TRIM_INTERVAL = 1.0       # seconds

_limited = False


def limit_heaps() -> bool:
    """Limit the process to ``HEAPS`` heaps, once; call it before any thread is started.
    False where the C library cannot (nothing changed)."""
    global _limited
    if not _limited:
        _limited = allocator.limit_heaps(HEAPS)
    return _limited


class ReturnFreeMemory(service.Service):
    """Gives the heaps' free memory back to the system every ``interval`` seconds."""

    def __init__(self, clock, interval: float = TRIM_INTERVAL):
        self.clock, self.interval = clock, interval
        self._call = None

    def startService(self):
        super().startService()
        self._call = task.LoopingCall(allocator.return_free_memory)
        self._call.clock = self.clock
        self._call.start(self.interval, now=False)

    def stopService(self):
        super().stopService()
        if self._call is not None and self._call.running:
            self._call.stop()
        self._call = None
