"""10,000 idle TLS connections cost little, and a new client is still served at once
(issue 13, "Done when").

A real ``mailstack serve`` process (its RSS is its own, not this test's) with an implicit-TLS
IMAP listener and an SMTP listener; the limits and the login deadline are raised so that
all 10,000 stay.  Measured here: 28 KB per connection.  About 24 KB of it is OpenSSL's own
per-connection state (valgrind massif: two record layers 9 KB, the connection 6 KB, the
memory BIOs 2 KB; the 16 KB read and write buffers are already released when idle, Twisted
sets SSL_MODE_RELEASE_BUFFERS); the session itself is about 3 KB, as a plaintext one shows.
"""

from __future__ import annotations

import resource
import socket
import ssl
import subprocess
import time

import pytest

from tests.support.memory import rss
from tests.support.process import command, free_ports, serve, wait_for_port, write_config

pytestmark = pytest.mark.e2e
IDLE = 10_000
PER_CONNECTION = 30 * 1024
SERVED_WITHIN = 0.100


@pytest.fixture
def descriptors():
    """Room for the clients (here) and the server (a child: it inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = IDLE + 1000
    if hard != resource.RLIM_INFINITY and hard < need:
        pytest.fail(f"the hard descriptor limit is {hard}; this test needs {need}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def server(tmp_path, descriptors):
    imaps, smtp = free_ports(2)
    config = write_config(
        tmp_path / "mailstack.toml", f"sqlite:///{tmp_path}/mailstack.db",
        [("imap", imaps, "implicit"), ("smtp", smtp, "none")], certs_dir=tmp_path / "certs",
        server={"state_dir": "state"}, imap={"login_timeout": 3600},
        limits={"connections": IDLE + 500,
                "imap": {"per_ip": IDLE + 500, "connections": IDLE + 500}})
    subprocess.run(command(config, "db", "upgrade"), check=True, capture_output=True,
                   timeout=120)
    with open(tmp_path / "server.log", "w") as log:
        proc = serve(config, stdout=log, text=False)
    try:
        wait_for_port(smtp, proc)
        context = ssl.create_default_context(cafile=tmp_path / "certs" / "ca.pem")
        yield proc, imaps, smtp, context
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def imaps_client(port: int, context) -> ssl.SSLSocket:
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30),
                               server_hostname="mail.example.test")
    greeting = sock.recv(1024)
    assert greeting.startswith(b"* OK"), greeting
    return sock


def test_ten_thousand_idle_tls_connections_cost_under_30_kb_each(server):
    proc, imaps, smtp, context = server
    for sock in [imaps_client(imaps, context) for _ in range(50)]:   # warm up
        sock.close()
    time.sleep(1)
    before = rss(proc.pid)
    held = [imaps_client(imaps, context) for _ in range(IDLE)]
    try:
        time.sleep(1)
        per_connection = (rss(proc.pid) - before) / IDLE
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", smtp), timeout=10) as sock:
            banner = sock.recv(1024)
        smtp_took = time.monotonic() - started
        started = time.monotonic()
        imaps_client(imaps, context).close()
        imaps_took = time.monotonic() - started
    finally:
        for sock in held:
            sock.close()
    assert banner.startswith(b"220 ")
    print(f"{per_connection / 1024:.1f} KB per connection; new SMTP client "
          f"{smtp_took * 1000:.1f} ms, new IMAPS client {imaps_took * 1000:.1f} ms")
    assert per_connection < PER_CONNECTION
    assert smtp_took < SERVED_WITHIN and imaps_took < SERVED_WITHIN
