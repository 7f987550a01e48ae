#!/usr/bin/env python3
"""A QRESYNC SELECT (RFC 7162 §3.2.5) after 10 changes, on folders of different sizes.

Usage: .venv/bin/python benchmarks/qresync_select.py [--messages 1000 20000] [--db URL]
For each size: a fresh database (SQLite file by default) whose INBOX holds N small messages
(``imap_large.fill``), ``mailstack serve`` pinned to core 1; a client enables QRESYNC and
notes UIDVALIDITY and HIGHESTMODSEQ; a second session makes 10 changes (5 flag changes,
3 expunges, 2 APPENDs); then the first times, over IMAPS:

- ``SELECT INBOX (QRESYNC (uidvalidity modseq))``, whose answer is the 10 changes,
- a plain ``SELECT INBOX`` (what any SELECT costs: the session loads the folder's UIDs
  and flags, imap_view.py), and
- the resync's own store read (``condstore.resync``, in this process): what QRESYNC adds.

The two SELECTs run in turn, 15 times each, and the medians are reported.

The last is what must stay flat in the folder size; the first two grow with it alike.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from imap_large import fill  # noqa: E402

from mailstack import config as configs  # noqa: E402
from mailstack.store import condstore, mailboxes  # noqa: E402
from mailstack.store.db import Database  # noqa: E402

REPEAT = 7


def median_ms(fn) -> float:
    times = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def interleaved(first, second) -> tuple[float, float]:
    """Medians of ``first`` and ``second`` run in turn (a busy machine slows both alike)."""
    times: tuple[list, list] = ([], [])
    for _ in range(2 * REPEAT + 1):
        for fn, out in zip((first, second), times):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
    return tuple(round(statistics.median(t), 2) for t in times)


def raw(client, text: str) -> list[bytes]:
    tag = client._new_tag()
    client.send(tag + b" " + text.encode() + b"\r\n")
    lines = []
    while not (line := client.readline()).startswith(tag + b" "):
        lines.append(line)
    assert line.startswith(tag + b" OK"), (text, line)
    return lines


def code(lines, name: bytes) -> int:
    return int(next(l for l in lines if b"[" + name + b" " in l)
               .split(b"[" + name + b" ")[1].split(b"]")[0])


def ten_changes(client, count: int) -> None:
    raw(client, "SELECT INBOX")
    for uid in range(1, 6):                                    # 5 flag changes
        raw(client, f"UID STORE {uid * count // 6} +FLAGS.SILENT (\\Flagged)")
    for uid in range(1, 4):                                    # 3 expunges
        raw(client, f"UID STORE {uid * count // 4 + 1} +FLAGS.SILENT (\\Deleted)")
        raw(client, f"UID EXPUNGE {uid * count // 4 + 1}")
    for n in range(2):                                         # 2 new messages
        client.append("INBOX", None, None, f"Subject: new {n}\r\n\r\nhi\r\n".encode())


def measure(count: int, db_url: str | None, work: Path, port: int) -> dict:
    url = db_url or f"sqlite:///{work}/q{count}.db"
    toml = work / f"q{count}.toml"
    toml.write_text(f'[database]\nurl = "{url}"\n[tls]\ngenerate_dev = true\n'
                    f'[[listeners]]\nprotocol = "imap"\nport = {port}\ntls = "implicit"\n')
    config = configs.load(toml)
    fill(config, count)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parent.parent))
    server = subprocess.Popen(["taskset", "-c", "1", sys.executable, "-m", "mailstack",
                               "--config", str(toml), "serve", "--log-level", "warn"], env=env)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        context = ssl.create_default_context(cafile=str(work / "certs" / "ca.pem"))

        def connect():
            client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context, timeout=600)
            client.login("big@example.test", "pw-big")
            return client
        client, other = connect(), connect()
        raw(client, "ENABLE QRESYNC")
        lines = raw(client, "SELECT INBOX")
        validity, highest = code(lines, b"UIDVALIDITY"), code(lines, b"HIGHESTMODSEQ")
        ten_changes(other, count)
        answer = raw(client, f"SELECT INBOX (QRESYNC ({validity} {highest}))")
        told = sum(1 for l in answer if b" FETCH (" in l or b"VANISHED (EARLIER)" in l)
        plain, qresync = interleaved(
            lambda: raw(client, "SELECT INBOX"),
            lambda: raw(client, f"SELECT INBOX (QRESYNC ({validity} {highest}))"))
        client.logout()
        other.logout()
        db = Database(config.database_url(), reactor=None, threads=1)
        folder = db.run_sync(lambda c: mailboxes.get_folder(c, 1, "INBOX"))
        store = median_ms(lambda: db.run_sync(condstore.resync, folder.id, highest, count + 2))
        db.stop()
        return {"messages": count, "told_lines": told, "qresync_select_ms": qresync,
                "plain_select_ms": plain, "resync_store_read_ms": store}
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, nargs="+", default=[1000, 20000])
    parser.add_argument("--db", help="a database URL (default: a new SQLite file per size)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    for n, count in enumerate(args.messages):
        print(json.dumps(measure(count, args.db, work, 19940 + n)), flush=True)


if __name__ == "__main__":
    main()
