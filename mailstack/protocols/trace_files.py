"""A traced connection's file (``traces``): private, appended in small writes.

Why its own module: what a trace file is on disk -- where, with which permissions, how
often written -- is separate from which connections are traced.

Security: the directories are created 0700 and the file 0600 (``O_NOFOLLOW``: a link
planted in the traces directory is not followed); writes are appended without fsync, a
few kilobytes at a time, and a file stops at ``MAX_FILE`` octets, so a chatty client
cannot fill the disk through its trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from twisted.logger import Logger

log = Logger(namespace="mailstack.traces")

FLUSH_AT = 8192
MAX_FILE = 16 * 1024 * 1024


class TraceFile:
    """One traced connection's file: 0600 in a 0700 directory, appended in small writes."""

    def __init__(self, path: Path):
        self.path = path
        self.pending: list[str] = []
        self.pending_size = 0
        self.written = 0
        self.fd = None
        self.broken = False

    def add(self, line: str) -> None:
        if self.broken:
            return
        self.pending.append(line)
        self.pending_size += len(line)
        if self.pending_size >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if not self.pending or self.broken:
            return
        data = "".join(self.pending).encode("utf-8", "backslashreplace")
        self.pending, self.pending_size = [], 0
        if self.written + len(data) > MAX_FILE:
            data = b"# trace file full: nothing more is written\n"
            self.broken = True
        try:
            if self.fd is None:
                self.fd = _open_private(self.path)
            os.write(self.fd, data)
            self.written += len(data)
        except OSError as e:
            log.warn("trace file {path} cannot be written: {e}", path=str(self.path),
                     e=e.strerror or e)
            self.broken = True

    def close(self) -> None:
        self.flush()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _open_private(path: Path) -> int:
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
