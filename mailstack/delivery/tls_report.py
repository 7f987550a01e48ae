"""A TLS-RPT aggregate report: where it goes, its JSON and the mail that carries it.

Why its own module: the report's shapes are fixed by RFC 8460 and tested without a
network or a clock; ``tls_report_sender.py`` decides when and to whom.  Only ``mailto:``
report addresses are served: an ``https:`` rua (RFC 8460 §5.4, an HTTP POST) is skipped,
as the address a domain must publish for mail reports is the mailto one.

Standards: RFC 8460 §3 (the ``_smtp._tls`` record and its ``rua``), §4 (the JSON:
date-range, policies with summary and failure-details), §5.1-5.3 (gzip, the file name,
``multipart/report; report-type=tlsrpt`` with ``application/tlsrpt+gzip``, the
TLS-Report-Domain and TLS-Report-Submitter fields; DKIM-signed by the sender's caller).
Security: the record is read from other domains' DNS: a rua that is not a plain
``mailto:`` address (percent-decoded, no query part) is dropped; nothing from the
record reaches the message but the address, checked by ``addresses.normalise``.  The
report names our MX-facing addresses and the remote hosts that failed: no message
content, senders or recipients.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import unquote

from mailstack import addresses

MEDIA_TYPE = "application/tlsrpt+gzip"


def rua_addresses(txts) -> list[str]:
    """The ``mailto:`` addresses of the one TLSRPTv1 record among ``txts`` (bytes or str);
    [] when there is none or more than one (RFC 8460 §3)."""
    records = []
    for txt in txts:
        text = txt.decode("utf-8", "replace") if isinstance(txt, bytes) else txt
        fields = [f.strip(" \t") for f in text.split(";")]
        if fields[0] == "v=TLSRPTv1":
            records.append(fields[1:])
    if len(records) != 1:
        return []
    found = []
    for field in records[0]:
        key, _, value = field.partition("=")
        if key.strip() != "rua":
            continue
        for uri in value.split(","):
            uri = uri.strip()
            if uri.lower().startswith("mailto:") and "?" not in uri:
                try:
                    found.append(addresses.normalise(unquote(uri[7:])))
                except addresses.AddressError:
                    pass
    return list(dict.fromkeys(found))


def report_json(domain: str, day: str, counted, policy, *, organization: str, contact: str,
                report_id: str) -> dict:
    """RFC 8460 §4.4's report of ``day`` for ``domain``: ``counted`` are the store's
    ``Counted`` rows; ``policy`` the cached MTA-STS policy (its text and mx patterns are
    quoted when its id is the one the sessions were judged under)."""
    by_policy: dict[tuple[str, str], list] = {}
    for row in counted:
        by_policy.setdefault((row.policy_type, row.policy_id), []).append(row)
    policies = []
    for (policy_type, policy_id), rows in by_policy.items():
        described = {"policy-type": policy_type, "policy-domain": domain}
        if policy is not None and policy.policy_id == policy_id and policy_id:
            described["policy-string"] = [l for l in policy.text.replace("\r\n", "\n")
                                          .split("\n") if l.strip()]
            described["mx-host"] = list(policy.mx)
        failures = [r for r in rows if r.result_type]
        entry = {"policy": described, "summary": {
            "total-successful-session-count": sum(r.sessions for r in rows if not r.result_type),
            "total-failure-session-count": sum(r.sessions for r in failures)}}
        if failures:
            entry["failure-details"] = [_failure(r) for r in failures]
        policies.append(entry)
    return {"organization-name": organization,
            "date-range": {"start-datetime": f"{day}T00:00:00Z",
                           "end-datetime": f"{day}T23:59:59Z"},
            "contact-info": contact, "report-id": report_id, "policies": policies}


def _failure(row) -> dict:
    detail = {"result-type": row.result_type, "failed-session-count": row.sessions}
    if row.mx_host:
        detail["receiving-mx-hostname"] = row.mx_host
    if row.remote_ip:
        detail["receiving-ip"] = row.remote_ip
    return detail


def report_message(hostname: str, domain: str, day: str, report: dict, to: list[str],
                   at: datetime) -> bytes:
    """The mail (RFC 8460 §5.3): From our postmaster, the JSON gzipped and attached under
    the §5.1 file name; CRLF lines.  The caller signs it (§5.3: DKIM is required)."""
    start = int(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())
    name = f"{hostname}!{domain}!{start}!{start + 86399}!{uuid.uuid4().hex[:8]}.json.gz"
    payload = gzip.compress(json.dumps(report, separators=(",", ":")).encode("utf-8"), mtime=0)
    encoded = base64.encodebytes(payload).decode("ascii").replace("\n", "\r\n").rstrip("\r\n")
    boundary = f"tlsrpt-{uuid.uuid4().hex}"
    lines = [
        f"From: TLS reports <postmaster@{hostname}>",
        f"To: {', '.join(f'<{a}>' for a in to)}",
        f"Subject: Report Domain: {domain} Submitter: {hostname} "
        f"Report-ID: <{report['report-id']}>",
        f"Date: {format_datetime(at)}",
        f"Message-ID: <{uuid.uuid4().hex}@{hostname}>",
        f"TLS-Report-Domain: {domain}",
        f"TLS-Report-Submitter: {hostname}",
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type="tlsrpt"; boundary="{boundary}"',
        "", f"--{boundary}", "Content-Type: text/plain; charset=us-ascii", "",
        f"This is an aggregate TLS report from {hostname} for {domain}, {day} (RFC 8460).",
        "", f"--{boundary}", f'Content-Type: {MEDIA_TYPE}; name="{name}"',
        f'Content-Disposition: attachment; filename="{name}"',
        "Content-Transfer-Encoding: base64", "", encoded, "", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("ascii")
