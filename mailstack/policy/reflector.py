"""The reflector: "is my mail program set up right?" answered by mail.

A customer sends any message to check@<their domain>; the answer, put straight into the
sender's own INBOX, says how the message arrived -- port, TLS, SMTP AUTH or POP-before-
SMTP, whether the password crossed in the clear -- and a plain verdict.

Security: it answers only senders who proved who they are (AUTH or a login window) and only
into their own mailbox; mail to it that arrives unauthenticated on port 25 is refused as an
unknown user, so it can never become a backscatter source.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.utils import format_datetime

from mailstack.policy.decision import DUNNO, permit


@dataclass(frozen=True)
class Arrival:
    account: str
    port: str
    port_number: int
    tls_version: str | None
    method: str              # auth | pop-before-smtp
    password_tls: bool | None


class Reflector:
    name = "reflector"

    def __init__(self, local_part: str):
        self.local_part = local_part.lower()

    def is_reflector(self, address: str) -> bool:
        return bool(self.local_part) and address.partition("@")[0] == self.local_part

    def check(self, request):
        route = request.route
        if not (route and route.hosted and self.is_reflector(request.recipient)):
            return DUNNO
        if request.authenticated_as is None or route.recipients.exists:
            return DUNNO      # unauthenticated: "user unknown", like any other address
        return permit(self.name, "reflector")

    @staticmethod
    def verdict(a: Arrival) -> list[str]:
        fixes = []
        if a.method != "auth":
            fixes.append("Turn on SMTP authentication ('my outgoing server requires "
                         "authentication'); sending after a POP login is being retired.")
        if a.password_tls is False:
            fixes.append("Your password was sent without encryption: turn on SSL/TLS.")
        if a.tls_version is None:
            fixes.append("This message travelled without encryption: use port 465 with "
                         "SSL/TLS, or 587 with STARTTLS.")
        return fixes

    def report(self, a: Arrival, hostname: str, at) -> bytes:
        fixes = self.verdict(a)
        verdict = ("Your mail program is ready for the change: nothing to do."
                   if not fixes else "Please change your mail program:\r\n  - "
                   + "\r\n  - ".join(fixes))
        body = [
            "This is how your message reached us:", "",
            f"  Port:        {a.port_number} ({a.port})",
            f"  Encryption:  {a.tls_version or 'none'}",
            "  Sent as:     " + ("SMTP authentication" if a.method == "auth"
                                 else "POP before SMTP (no authentication)"),
            "  Password:    " + {True: "sent encrypted", False: "sent WITHOUT encryption",
                                 None: "unknown"}[a.password_tls],
            "", verdict, ""]
        head = [f'From: "Mail settings check" <{self.local_part}@{a.account.rpartition("@")[2]}>',
                f"To: <{a.account}>", "Subject: Your mail settings check",
                f"Date: {format_datetime(at)}", f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
                "Auto-Submitted: auto-replied", "MIME-Version: 1.0",
                "Content-Type: text/plain; charset=utf-8"]
        return ("\r\n".join(head + [""] + body) + "\r\n").encode("utf-8")
