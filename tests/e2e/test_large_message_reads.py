"""RETR and FETCH of large messages are streamed out with the client's reading (issue 13).

Before: RETR wrote the whole dot-stuffed message into the transport at once; FETCH built
each response whole (the literal copied twice) and read bodies 500 messages at a time, so
``FETCH 1:* BODY[]`` over large mail held every body at once.  Now a long literal or
message goes out a piece at a time as the client reads, and bodies are read a few MB at a
time, and a large message is read from the store a slice at a time (store/body_ranges.py).
The clients (Debian's curl, Python's imaplib) run in their own processes and write to files,
so the RSS measured here (the server runs in this test's process) is the server's.
Measured: 19 MB of growth whatever the size (the database threads' malloc arenas keep a
slice each), against 59 MB for one 20 MB RETR and 250 MB for 4 x 20 MB FETCH before.
"""

from __future__ import annotations

import gc
import smtplib
import subprocess
import sys
import time

import pytest

from tests.support.memory import Peak

pytestmark = pytest.mark.e2e
PASSWORD = "large reads pw"
SIZE = 20 * 1024 * 1024
COUNT = 4


@pytest.fixture(scope="module")
def message() -> bytes:
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.!\r\n"
    return b"Subject: large\r\n\r\n" + line * (SIZE // len(line))


@pytest.fixture
def server(make_server, message):
    server = make_server(listeners=[{"protocol": "smtp", "port": 0, "name": "smtp"},
                                    {"protocol": "pop3", "port": 0, "name": "pop3"},
                                    {"protocol": "imap", "port": 0, "name": "imap"}])
    server.add_account("ann@example.test", PASSWORD)
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60) as smtp:
        for _ in range(COUNT):
            smtp.sendmail("a@remote.example", ["ann@example.test"], message)
    # Warm up first: the database threads and connections a first read starts are a
    # one-off cost of the process (up to 12 MB on PostgreSQL), not of streaming.
    for url in (f"pop3://127.0.0.1:{server.port('pop3')}/", f"imap://127.0.0.1:{server.port('imap')}/INBOX"):
        subprocess.run(["curl", "-sS", "-o", "/dev/null", "-u", f"ann@example.test:{PASSWORD}", url],
                       check=True, timeout=60)
    gc.collect()
    time.sleep(0.5)
    return server


def test_pop3_retr_of_a_large_message_is_streamed(server, message, tmp_path):
    with Peak() as peak:                              # curl writes the message to a file
        subprocess.run(["curl", "-sS", "--max-time", "120", "-u", f"ann@example.test:{PASSWORD}",
                        "-o", str(tmp_path / "1.eml"), f"pop3://127.0.0.1:{server.port('pop3')}/1"],
                       check=True)
    assert (tmp_path / "1.eml").read_bytes().endswith(message)    # after our Received: line
    assert peak.growth < 1.5 * SIZE, f"RSS grew {peak.growth >> 20} MB for a {SIZE >> 20} MB RETR"


FETCH_ALL = """
import imaplib, sys
imap = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
imap.login("ann@example.test", sys.argv[2])
imap.select("INBOX", readonly=True)
status, data = imap.fetch("1:*", "(BODY.PEEK[])")
bodies = [part[1] for part in data if isinstance(part, tuple)]
sys.stdout.buffer.write(b"%d %d" % (len(bodies), sum(map(len, bodies))))
imap.logout()
"""


def test_imap_fetch_of_every_large_message_holds_about_one(server, message):
    with Peak() as peak:
        out = subprocess.run([sys.executable, "-c", FETCH_ALL, str(server.port("imap")), PASSWORD],
                             capture_output=True, check=True, timeout=120).stdout
    count, octets = map(int, out.split())
    assert count == COUNT and octets > COUNT * len(message)
    assert peak.growth < 1.5 * SIZE, \
        f"RSS grew {peak.growth >> 20} MB for {COUNT} x {SIZE >> 20} MB FETCH"
