"""mailstack: an ISP mail-service stack (SMTP MX, submission, POP3, IMAP) on one Twisted reactor."""

__version__ = "0.1.0"
