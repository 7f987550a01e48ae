"""Memory a large message used goes back to the system once it is stored (glibc malloc).

Why: glibc serves a block from its heaps or, above a threshold, maps it on its own and
unmaps it when freed.  The threshold starts at 128 KB but rises to the size of the largest
mapped block freed so far (up to 32 MB), so that the next block that size comes from a
heap, and a heap keeps free memory for reuse.  Each thread has its own heap (arena).
After ten 25 MB messages every database thread kept about a message's worth of free
memory: RSS stayed 97 MB above its start, all of it free (issue 13, case 5).

Why a trim after each large store and not a fixed threshold (``mallopt``): fixing the
threshold changed malloc for every allocation and cost IMAP FETCH 10-25 % of its CPU
(benchmarks/run.sh, paired runs); ``malloc_trim`` costs a millisecond or so, and only
when a message of ``store/budget.py``'s SMALL size or more has been stored.

``mailstack serve`` also limits the heaps to a few for the whole process and gives the
free memory back four times a second (``mailstack/memory.py``, issue 16): then a heap per
database thread no longer keeps what each RETR, FETCH or DATA freed.

Other C libraries (musl) have no ``malloc_trim`` or ``mallopt``; there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8      # mallopt's parameter number for the most heaps (glibc's malloc.h)

_trim = None
_mallopt = None


def _load():
    global _trim, _mallopt
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim, _mallopt = libc.malloc_trim, libc.mallopt
    except (OSError, AttributeError):
        _trim = _mallopt = False
        return
    _trim.argtypes, _trim.restype = (ctypes.c_size_t,), ctypes.c_int
    _mallopt.argtypes, _mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int


def limit_heaps(heaps: int) -> bool:
    """At most ``heaps`` heaps (arenas) for all threads; False where not possible.  Only
    effective before a second thread has allocated (glibc fixes the limit then)."""
    if _mallopt is None:
        _load()
    return bool(_mallopt) and _mallopt(M_ARENA_MAX, heaps) == 1


def return_free_memory() -> bool:
    """Give the free memory of every heap back to the system; False where not possible."""
    if _trim is None:
        _load()
    if not _trim:
        return False
    _trim(0)
    return True
