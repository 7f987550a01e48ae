"""TCP listening whose replies leave with the read that asked for them.

Why: Twisted buffers every ``transport.write`` and sends it on the reactor's next turn,
when ``epoll`` reports the socket writable.  A reply to a command read in this turn thus
costs a second trip round the reactor (``epoll_wait``, the timed-call check, the logging
context, ``doWrite``) before it leaves: for a POP3 client that RETRs 200 messages one by
one, or an SMTP client waiting for each reply, that trip is a fixed part of every round
trip (issue 16 measured a bare Twisted POP3 server ~30 µs per RETR slower than Dovecot,
mostly the reactor's own turns).  ``PromptServer`` sends what the protocol wrote while it
handled the bytes just read, at the end of that same ``doRead``, through Twisted's own
``doWrite`` (which also resumes producers and finishes a ``loseConnection``).  Writes made
elsewhere (a thread's result, a timer) still go out on the reactor's next turn; several
writes in one read still leave as one ``send``.

Only Twisted's documented descriptor interface is used (``write``, ``writeSequence``,
``doRead``, ``doWrite``: ``IReadDescriptor``/``IWriteDescriptor``); ``tcp.Port`` creates its
connections from its ``transport`` class attribute.  Implicit TLS is a protocol wrapper
above this transport; it, and the layer STARTTLS adds, gather small writes for a turn of
their own (Twisted's ``BufferingTLSTransport``), so TLS replies keep Twisted's timing.

Security: nothing changes in what is sent or when the peer can send; the per-connection
buffer limits and producers work as before (``doWrite`` sends at most ``SEND_LIMIT`` per
call, the rest waits for the socket as usual).
"""

from __future__ import annotations

from twisted.internet import defer, interfaces, tcp
from twisted.protocols.tls import TLSMemoryBIOFactory
from zope.interface import implementer


class PromptServer(tcp.Server):
    """A server-side TCP connection that flushes at the end of each read event."""

    _unsent = False

    def write(self, data: bytes) -> None:
        super().write(data)
        self._unsent = not self.TLS      # after STARTTLS, the TLS layer writes for itself

    def writeSequence(self, iovec) -> None:
        super().writeSequence(iovec)
        self._unsent = not self.TLS

    def doWrite(self):
        self._unsent = False
        return super().doWrite()

    def doRead(self):
        why = super().doRead()
        # Not once ``loseConnection`` was asked for: the reactor's own write turn ends the
        # connection as a write (its answer here would be taken for the peer's half-close).
        if self._unsent and not why and self.connected and not self.disconnecting:
            why = self.doWrite()
        return why


class PromptPort(tcp.Port):
    transport = PromptServer


@implementer(interfaces.IStreamServerEndpoint)
class PromptEndpoint:
    """Like Twisted's TCP4/TCP6/SSL4 server endpoints, with ``PromptServer`` connections
    (the address family follows ``interface``, as ``tcp.Port`` does)."""

    def __init__(self, reactor, port: int, interface: str, tls_options=None, backlog: int = 50):
        self.reactor, self.port, self.interface = reactor, port, interface
        self.tls_options, self.backlog = tls_options, backlog

    def listen(self, factory):
        if self.tls_options is not None:
            factory = TLSMemoryBIOFactory(self.tls_options, False, factory)
        port = PromptPort(self.port, factory, self.backlog, self.interface, self.reactor)
        return defer.execute(_started, port)


def _started(port):
    port.startListening()
    return port
