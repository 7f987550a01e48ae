"""Waiting for something the server does asynchronously (a queue run, a notice)."""

from __future__ import annotations

import time


def eventually(check, seconds: float = 10.0, what: str = "condition"):
    """``check()``'s first true result, polled every 50 ms for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {seconds} s: {what}")
