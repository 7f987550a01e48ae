"""The real reactor, running in a background thread for the whole test session.

Why: end-to-end tests drive the server with blocking clients we did not write (smtplib,
poplib, imaplib, curl, fetchmail...).  The server runs on the real reactor in this thread;
the test thread plays the client and reaches into the reactor only through ``call``.
"""

from __future__ import annotations

import threading

from twisted.internet import reactor
from twisted.internet.threads import blockingCallFromThread

_thread: threading.Thread | None = None


def ensure_running() -> None:
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=reactor.run, kwargs={"installSignalHandlers": False},
                                   name="reactor", daemon=True)
        _thread.start()


def call(fn, *args, **kwargs):
    """Run ``fn`` in the reactor thread and wait for its (possibly Deferred) result."""
    ensure_running()
    return blockingCallFromThread(reactor, fn, *args, **kwargs)
