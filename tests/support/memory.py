"""A process's resident memory, as the memory tests of issue 13 measure it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path


def rss(pid: int | str = "self") -> int:
    """VmRSS of ``pid`` (this process by default: the test server runs in it), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Peak:
    """The highest RSS of this process while the block runs, sampled every 10 ms."""

    def __enter__(self):
        self.before = self.peak = rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._done.wait(0.01):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


@dataclass(frozen=True)
class Growth:
    peak: int            # the highest RSS while the threads ran, above the start
    after: int           # RSS half a second after they ended, above the start
    report: str


def threads_at_once(threads, what: str) -> Growth:
    """Start ``threads`` together, wait for them all, and say what memory they cost."""
    started = time.monotonic()
    with Peak() as memory:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    elapsed = time.monotonic() - started
    time.sleep(0.5)
    after = rss() - memory.before
    report = (f"{what} in {elapsed:.1f} s: peak {memory.growth >> 20:+d} MB, "
              f"after {after >> 20:+d} MB")
    print(report)
    return Growth(memory.growth, after, report)
