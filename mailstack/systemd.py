"""Telling systemd the server is ready (``Type=notify``): ``READY=1`` on ``$NOTIFY_SOCKET``.

Why not a library: the protocol is one datagram on a Unix socket (sd_notify(3)); the
python-systemd binding needs libsystemd headers to build.  Sent only once every listener is
bound, so a unit whose port 25 is taken never looks healthy.

Security: the socket path comes from systemd's environment; nothing is read from it.
"""

from __future__ import annotations

import os
import socket


def notify(state: str, environ=os.environ) -> bool:
    """Send ``state`` (e.g. ``"READY=1"``) if systemd asked for it; whether it was sent."""
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):             # the abstract namespace
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True
