"""``prompt_tcp``: a reply written while a read is handled leaves within that read event."""

from __future__ import annotations

import socket

from twisted.internet import defer, protocol, reactor

from mailstack.prompt_tcp import PromptEndpoint
from tests.support.reactor import call


class Replier(protocol.Protocol):
    """Answers each read, then looks -- on the reactor's next turn, before it polls again
    -- whether the answer is already in the client's socket."""

    def dataReceived(self, data):
        self.transport.write(b"you said " + data)
        reactor.callLater(0, self.factory.look)


def _listen(endpoint_factory, seen):
    factory = protocol.Factory.forProtocol(Replier)
    factory.look = lambda: seen.append(_readable(factory.client))
    return endpoint_factory().listen(factory).addCallback(lambda port: (port, factory))


def _readable(client: socket.socket) -> bytes | None:
    try:
        return client.recv(100, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None


def _round(endpoint_factory) -> bytes | None:
    seen: list = []
    port, factory = call(_listen, endpoint_factory, seen)
    try:
        client = factory.client = socket.create_connection(("127.0.0.1", port.getHost().port))
        with client:
            client.sendall(b"hello")
            call(_until, seen)
        return seen[0]
    finally:
        call(port.stopListening)


def _until(seen):
    d = defer.Deferred()

    def poll():
        if seen:
            d.callback(None)
        else:
            reactor.callLater(0.01, poll)
    poll()
    return d


def test_the_reply_is_sent_before_the_reactor_turns_again():
    assert _round(lambda: PromptEndpoint(reactor, 0, "127.0.0.1")) == b"you said hello"


def test_twisteds_own_listener_sends_it_only_on_the_next_turn():
    """What the module is for: Twisted's listenTCP waits for the next poll."""
    from twisted.internet import endpoints
    assert _round(lambda: endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")) is None
