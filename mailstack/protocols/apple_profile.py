"""The Apple configuration profile (``.mobileconfig``) that sets up Mail on an iPhone, iPad
or Mac: one ``com.apple.mail.managed`` payload with IMAP and SMTP for one address.

Why: Apple Mail reads neither Thunderbird's autoconfig nor Outlook's Autodiscover; an ISP's
customers on Apple devices install a profile instead (Apple's Configuration Profile
Reference, "Mail").  The servers are those the autoconfig answer offers in the phase in
force (``policy/client_settings.py``): implicit TLS first, the address as the login.  The
profile holds no password: the device asks for it.  Its identifiers are derived from the
address, so installing it again replaces the profile instead of adding a second account.

Standards: Apple Configuration Profile Reference (``com.apple.mail.managed``), RFC 8314.
Security: unsigned and password-free; only served for a hosted domain, like autoconfig.
"""

from __future__ import annotations

import plistlib
import uuid

CONTENT_TYPE = b"application/x-apple-aspen-config"


def profile(address: str, services, host: str, display_name: str) -> bytes:
    """The profile for ``address``: the first offered IMAP and SMTP of ``services``."""
    imap = next(s for s in services if s.kind == "imap" and s.offered)
    smtp = next(s for s in services if s.kind == "smtp" and s.offered)
    domain = address.rpartition("@")[2]
    root_id = ".".join(reversed(domain.split("."))) + ".mailstack"
    mail = {
        "PayloadType": "com.apple.mail.managed",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{root_id}.mail.{address}",
        "PayloadUUID": _uuid(f"mail:{address}"),
        "PayloadDisplayName": f"{display_name} ({address})",
        "EmailAccountDescription": display_name,
        "EmailAccountType": "EmailTypeIMAP",
        "EmailAddress": address,
        "IncomingMailServerHostName": host,
        "IncomingMailServerPortNumber": imap.port,
        "IncomingMailServerUseSSL": True,
        "IncomingMailServerUsername": address,
        "IncomingMailServerAuthentication": "EmailAuthPassword",
        "OutgoingMailServerHostName": host,
        "OutgoingMailServerPortNumber": smtp.port,
        "OutgoingMailServerUseSSL": True,
        "OutgoingMailServerUsername": address,
        "OutgoingMailServerAuthentication": ("EmailAuthPassword" if smtp.password
                                             else "EmailAuthNone"),
        "OutgoingPasswordSameAsIncomingPassword": smtp.password,
    }
    return plistlib.dumps({
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{root_id}.{address}",
        "PayloadUUID": _uuid(f"profile:{address}"),
        "PayloadDisplayName": f"{display_name}: {address}",
        "PayloadDescription": f"Sets up Mail for {address} (IMAP and SMTP over TLS).",
        "PayloadOrganization": display_name,
        "PayloadContent": [mail],
    })


def _uuid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailstack:{name}")).upper()
