"""The rspamd client's HTTP/1.1 exchange (``http_exchange.py``) against a real TCP
peer on loopback that answers as scripted: what rspamd itself never does (chunked
answers, answers cut off, too large, silent peers, a peer slow to read a large body).
The client against a real rspamd: tests/e2e/test_spam_scan.py."""

from __future__ import annotations

import socket
import threading
import time

import pytest
from twisted.internet import defer, error, reactor

from mailstack.message.spool import spooled
from mailstack import http_exchange
from mailstack.http_exchange import MAX_ANSWER, ExchangeFailed, exchange
from tests.support.reactor import call

HEAD = b"POST /checkv2 HTTP/1.1\r\nHost: test\r\nContent-Length: %d\r\n\r\n"


class Peer:
    """A loopback server for one connection: reads the request (head and
    Content-Length body), then sends ``answer`` (a list of byte strings, a float is a
    pause in seconds) and closes, unless ``hold``."""

    def __init__(self, answer=(), *, hold=False, read_delay=0.0):
        self.answer, self.hold, self.read_delay = list(answer), hold, read_delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request, self.closed_by_client = b"", threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        conn, _ = self.listener.accept()
        with conn:
            time.sleep(self.read_delay)
            self.request = _read_request(conn)
            for part in self.answer:
                if isinstance(part, float):
                    time.sleep(part)
                else:
                    conn.sendall(part)
            if self.hold:
                conn.settimeout(10)
                try:
                    while conn.recv(65536):
                        pass
                except OSError:
                    pass
                self.closed_by_client.set()
        self.listener.close()


def _read_request(conn) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(body) < length:
        piece = conn.recv(1024 * 1024)
        if not piece:
            break
        body += piece
    return head + b"\r\n\r\n" + body


def run(peer, message=b"hello\r\n", timeout=10.0):
    spool = spooled(message)
    return call(exchange, reactor, "127.0.0.1", peer.port, HEAD % len(message), spool,
                timeout)


def test_an_answer_with_content_length_in_pieces():
    body = b'{"action": "no action"}'
    peer = Peer([b"HTTP/1.1 200 OK\r\nContent-Len", 0.05,
                 b"gth: %d\r\nConnection: close\r\n\r\n" % len(body), body[:5], 0.05, body[5:]],
                hold=True)
    assert run(peer) == (200, body)
    assert peer.request.endswith(b"\r\n\r\nhello\r\n")
    assert peer.closed_by_client.wait(5)           # we close once the answer is whole


def test_a_chunked_answer_is_joined_and_its_extensions_and_trailers_ignored():
    peer = Peer([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                 b"5;ext=1\r\nhello\r\n", 0.05, b"6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n"],
                hold=True)
    assert run(peer) == (200, b"hello world")


def test_a_body_read_up_to_the_close_and_the_status_is_given():
    assert run(Peer([b"HTTP/1.0 503 Busy\r\n\r\noverloaded"])) == (503, b"overloaded")


@pytest.mark.parametrize("answer", [
    [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_ANSWER + 1)],
    [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
    + [b"10000\r\n" + b"x" * 0x10000 + b"\r\n"] * (MAX_ANSWER // 0x10000 + 1),
    [b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"y" * (http_exchange.MAX_HEAD + 10)],
])
def test_an_answer_too_large_fails_without_reading_it_all(answer):
    with pytest.raises(ExchangeFailed, match="too large"):
        run(Peer(answer, hold=True))


@pytest.mark.parametrize("answer, why", [
    ([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"], "cut off"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"], "cut off"),
    ([b"SPAMD/1.1 0 EX_OK\r\n\r\n"], "not HTTP"),
    ([b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], "Content-Length"),
    ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n"], "chunk size"),
    ([], "cut off"),
])
def test_a_broken_answer_fails(answer, why):
    with pytest.raises(ExchangeFailed, match=why):
        run(Peer(answer))


def test_a_silent_peer_costs_the_timeout_and_the_connection_is_aborted():
    peer = Peer([], hold=True)
    started = time.monotonic()
    with pytest.raises(defer.TimeoutError):
        run(peer, timeout=0.5)
    assert 0.4 < time.monotonic() - started < 3
    assert peer.closed_by_client.wait(5)


def test_cancelling_aborts_the_connection():
    peer = Peer([], hold=True)
    spool = spooled(b"hello\r\n")
    holder = {}

    def start():
        holder["d"] = exchange(reactor, "127.0.0.1", peer.port, HEAD % 7, spool, 30)
        holder["d"].addErrback(lambda f: holder.update(failure=f))
    call(start)
    time.sleep(0.2)
    call(lambda: holder["d"].cancel())
    assert holder["failure"].check(defer.CancelledError)
    assert peer.closed_by_client.wait(5)


def test_nobody_listening_is_a_connection_error():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    spool = spooled(b"x")
    with pytest.raises(error.ConnectionRefusedError):
        call(exchange, reactor, "127.0.0.1", port, HEAD % 1, spool, 5)


def test_a_large_body_is_written_as_the_peer_reads_it_not_buffered_whole():
    message = b"".join(b"line %07d of a large message\r\n" % i for i in range(300_000))
    assert len(message) > 8 * 1024 * 1024
    body = b"{}"
    peer = Peer([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body], read_delay=1.0)
    spool = spooled(message)
    buffered, holder = [], {}

    def start():
        holder["d"] = exchange(reactor, "127.0.0.1", peer.port, HEAD % len(message), spool, 30)
        holder["d"].addBoth(lambda r: holder.update(result=r))

    def sample():           # what our side holds while the peer does not read
        for conn in reactor.getWriters():
            if hasattr(conn, "_tempDataLen"):
                buffered.append(conn._tempDataLen + len(conn.dataBuffer) - conn.offset)
    call(start)
    for _ in range(5):
        time.sleep(0.1)
        call(sample)
    deadline = time.monotonic() + 30
    while "result" not in holder and time.monotonic() < deadline:
        time.sleep(0.05)
    assert holder["result"] == (200, body)
    assert peer.request.endswith(message)
    assert buffered and max(buffered) < 1024 * 1024, buffered


def test_a_connect_that_does_not_complete_costs_the_timeout():
    """A listener whose accept queue is full drops further SYNs: the connect hangs; the
    exchange fails with the timeout (not a connect error), within it."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as full:
        port = full.getsockname()[1]
        queued = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            queued.append(s)
        time.sleep(0.2)
        started = time.monotonic()
        try:
            with pytest.raises(defer.TimeoutError):
                call(exchange, reactor, "127.0.0.1", port, HEAD % 1, spooled(b"x"), 0.5)
        finally:
            for s in queued:
                s.close()
    assert time.monotonic() - started < 3
