"""The facts a policy check may look at, gathered by the protocol at each SMTP stage.

Why one frozen value: checks must not reach into protocol objects (layering, C3), and the
rejection log needs the same facts the check saw.  The protocol fills in what it knows
(the connection, the envelope so far); the policy adds what it looks up (``route``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailstack.store.routes import Route


@dataclass(frozen=True)
class SMTPRequest:
    stage: str                 # connect | helo | mail | rcpt | data
    session: str
    client_ip: str
    port: str                  # listener name: "mx", "submission", ...
    tls: bool = False
    helo: str | None = None
    sender: str | None = None  # "" is the null reverse-path
    recipient: str | None = None
    route: Route | None = None
    client: object = None             # the ClientState the policy gave out at connect
    authenticated_as: object = None   # the AccountRef vouched for by AUTH or a login window
    declared_size: int | None = None  # MAIL FROM SIZE=, when the client declared one
    recipients: tuple = ()            # the Accepted recipients of the transaction so far
    size: int | None = None           # data: the message's size in octets
    message: object = None            # data: the message's spool (message/spool.py)
    authentication: object = None     # data: the authentication.Stamp, once verified
    queue_id: str | None = None       # data: the id the 250 will name
    spam: object = None               # data: the spam_scan.SpamResult, once scanned

    def at(self, stage: str, **changes) -> "SMTPRequest":
        return replace(self, stage=stage, **changes)
