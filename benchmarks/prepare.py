#!/usr/bin/env python3
"""Prepare a database for the load generator (../shared/bench/loadgen.py).

It expects accounts user0@example.test … user99@example.test with password pw-userN;
recipients rotate over user0–89, and POP3/IMAP read user90–99, each filled with
200 messages of 10 KB.  Usage: prepare.py CONFIG
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

from mailstack import clock as clocks, config as configs
from mailstack.realm import hashing
from mailstack.store import directory, mailboxes, migrations
from mailstack.store.db import Database

DOMAIN = "example.test"


def message(n: int, size: int = 10 * 1024) -> bytes:
    head = (f"From: bench@{DOMAIN}\r\nTo: reader@{DOMAIN}\r\nSubject: message {n}\r\n"
            f"Message-ID: <bench-{n}@{DOMAIN}>\r\n\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    return head + line * ((size - len(head)) // len(line))


def main(path: str) -> None:
    config = configs.load(path)
    db = Database(config.database_url(), reactor=None, threads=1)
    migrations.upgrade(db.engine)
    now = clocks.now(clocks.WallClock())
    db.run_sync(directory.ensure_domains, [DOMAIN], now)
    hasher = hashing.PasswordHasher(hashing.make_context(config.auth.default_scheme))
    with ThreadPoolExecutor(4) as pool:
        hashes = list(pool.map(lambda n: hasher.hash(f"pw-user{n}"), range(100)))
    for n, password_hash in enumerate(hashes):
        address = f"user{n}@{DOMAIN}"
        if db.run_sync(directory.get_account, address) is None:
            account_id = db.run_sync(directory.add_account, address, password_hash, now)
            if n >= 90:
                db.run_sync(lambda conn: [mailboxes.deliver(conn, [account_id], message(i), now)
                                          for i in range(200)])
    db.stop()
    print(f"prepared 100 accounts in {config.database_url()}")


if __name__ == "__main__":
    main(sys.argv[1])
