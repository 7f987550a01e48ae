"""The one guard against commands pipelined across STARTTLS/STLS, for SMTP, POP3 and IMAP.

Why: a man in the middle can append plaintext commands to the client's ``STARTTLS`` in the
same packet; a server that keeps reading its buffer after the handshake executes them as if
they came over TLS (CVE-2011-0411, and the 2021 "NO STARTTLS" family).  Stock Twisted ESMTP
and IMAP4Server are vulnerable (TWISTED-NOTES).  RFC 3207 §4.2, RFC 2595 §3.1 and RFC 3501
§6.2.1 also require the session state learned before TLS to be forgotten.

``offered`` says when the upgrade is on offer; ``begin_tls`` drops every byte already
received, tells the protocol to forget its state, then starts the handshake.  Line readers must stop their loop over already-split lines
once ``tls_started_mid_read`` is set (``BoundedLineReceiver`` does).

Security: this is the only code path that calls ``transport.startTLS`` on a server.
"""

from __future__ import annotations

from twisted.internet.interfaces import ISSLTransport


def begin_tls(protocol, tls_options) -> None:
    protocol._buffer = b""
    protocol.tls_started_mid_read = True
    reset = getattr(protocol, "reset_after_tls", None)
    if reset is not None:
        reset()
    protocol.transport.startTLS(tls_options)


def offered(listener, transport, tls_options) -> bool:
    """Whether STARTTLS (STLS) is on offer: on a ``starttls`` listener, before TLS, and only
    when certificates are loaded."""
    return listener.tls == "starttls" and not is_tls(transport) and tls_options is not None


def is_tls(transport) -> bool:
    """True for implicit TLS and after STARTTLS."""
    return ISSLTransport.providedBy(transport)


def tls_version(transport) -> str | None:
    if not is_tls(transport):
        return None
    try:
        return transport.getHandle().get_protocol_version_name()
    except Exception:  # the handshake may not have finished yet
        return None
