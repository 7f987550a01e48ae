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

Other C libraries (musl) have no ``malloc_trim``; there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_trim = None


def _load():
    global _trim
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _trim = libc.malloc_trim
    except (OSError, AttributeError):
        _trim = False
        return
    _trim.argtypes, _trim.restype = (ctypes.c_size_t,), ctypes.c_int


def return_free_memory() -> bool:
    """Give the free memory of every heap back to the system; False where not possible."""
    if _trim is None:
        _load()
    if not _trim:
        return False
    _trim(0)
    return True
