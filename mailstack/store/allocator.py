"""Message-sized allocations go back to the system when they are freed (glibc malloc).

Why: glibc serves a block from its heaps or, above a threshold, maps it on its own and
unmaps it when freed.  The threshold starts at 128 KB but rises to the size of the largest
mapped block freed so far (up to 32 MB), so that the next block that size comes from a
heap; and a heap gives free memory back only beyond a trim threshold that rises with it.
Each thread has its own heap (arena).  After one 25 MB message, every database thread
that later stored one kept about that much free memory: ten 25 MB messages left RSS 93 MB
above its start, all of it free (``malloc_trim`` gave it back), and the peak grew by a
message per thread (issue 13, case 5).  A fixed threshold (``mallopt``) stops the rise: a
block of MMAP_THRESHOLD or more -- a message body, a driver's copy of it -- is mapped on
its own and returned when freed, whichever thread freed it.

Why 8 MB and a trim threshold of twice that (what glibc's own adjustment would pick):
with 1 MB, every FETCH batch and every joined write buffer of a few MB was mapped, faulted
in and unmapped again, and a heap gave back anything over glibc's fixed 128 KB at each
free: IMAP FETCH lost 20-30 % (benchmarks/run.sh, paired runs).  Blocks under 8 MB are
the working buffers of ordinary traffic and are reused from the heaps; a large message
(and a driver's copy of it) is over it and is returned.

The setting is process-wide and changes nothing for small blocks.  Other C libraries
(musl) have no such setting; there this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

MMAP_THRESHOLD = 8 * 1024 * 1024     # blocks from this size on are mapped on their own
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # free memory at a heap's top kept for reuse
_M_TRIM_THRESHOLD = -1               # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD; False where that is not possible."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1)
