"""Complaints: N complaints about an IP within a window put it on the local block list.

Complaints come from the abuse desk (``mailstack complaint add IP --reason …``) or from
spam that customers forward to the configured report address: the offending IP is the one
in the first Received header our own MX wrote for an unauthenticated client.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta

from mailstack.store import blocks, complaints


def register(conn, complaint: complaints.Complaint, settings, blocker):
    """Store a complaint; block the IP when the window holds enough.  (count, block|None)"""
    complaints.add(conn, complaint)
    since = complaint.at - timedelta(seconds=settings.complaint_window)
    count = complaints.count_since(conn, complaint.ip, since)
    if count < settings.complaint_threshold:
        return count, None
    if any(b.source == "complaints" for b in blocks.active_for(conn, complaint.ip, complaint.at)):
        return count, None
    block = blocker.add(conn, complaint.ip, action="reject", source="complaints",
                        reason=f"{count} complaints in {settings.complaint_window // 86400 or 1} day(s)",
                        evidence=f"latest: {complaint.reason}", added_by=complaint.source,
                        at=complaint.at)
    return count, block


def originating_ip(message: bytes, hostname: str, trusted_networks=()) -> str | None:
    """The client IP of the first Received header our MX wrote for an unauthenticated hop."""
    pattern = re.compile(
        rb"Received: from \S+ \((?:\S+ )?\[([0-9A-Fa-f:.]+)\]\)\s+by " + re.escape(hostname.encode())
        + rb" \(mailstack\) with (\w+)")
    trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_networks]
    for match in pattern.finditer(message):
        ip, protocol = match.group(1).decode(), match.group(2).decode()
        if protocol.endswith("A"):      # ESMTPA / ESMTPSA: our own customer's submission
            continue
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if not any(address in n for n in trusted):
            return address.compressed
    return None


def from_report(conn, message: bytes, at: datetime, reporter: str, hostname: str, settings,
                blocker):
    """A store function: turn a forwarded spam into a complaint.  (ip, count, block) or None."""
    ip = originating_ip(message, hostname, settings.trusted_networks)
    if ip is None:
        return None
    subject = re.search(rb"^Subject: ?(.*)$", message, re.MULTILINE)
    evidence = subject.group(1).decode("utf-8", "replace")[:200] if subject else ""
    count, block = register(conn, complaints.Complaint(ip, at, "report", f"reported by {reporter}",
                                                       evidence), settings, blocker)
    return ip, count, block
