"""The whitehole request page's HTML: the form, and the answer to a filed request.

Why plain words per outcome: the reader is another provider's administrator whose mail
we refused; the answer says whether a whitelist entry can help at all (``desk/
whitehole.py``), and if not, what will: delisting, a PTR record, the right address.

Standards: HTML (application/x-www-form-urlencoded form, ``method="post"``).
Security: every value -- above all the pasted bounce, which is hostile input -- is
HTML-escaped (``html.escape`` with quotes) wherever it appears, in text and in attribute
values; the page has no script and no inline style (the CSP allows none); the answer
names only the refusal's kind and what the sender sent, never our records' addresses
nor the desk's did-you-mean suggestions.
"""

from __future__ import annotations

from html import escape

PATH = "/whitehole"
MAX_REASON = 2000


def _page(title: str, body: list[str]) -> str:
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>{escape(title)}</title></head><body>",
                      f"<h1>{escape(title)}</h1>", *body, "</body></html>", ""])


def form(values: dict | None = None, problems: list[str] = ()) -> str:
    """The request form, filled with ``values`` again when ``problems`` sent it back."""
    v = {k: escape(str(x)) for k, x in (values or {}).items()}
    errors = ([f"<p><strong>Please correct:</strong></p><ul>"
               + "".join(f"<li>{escape(p)}</li>" for p in problems) + "</ul>"]
              if problems else [])
    return _page("Request a whitelist entry (whitehole)", [
        "<p>If our mail server refused mail from your mail server because a public "
        "blocklist (DNSBL) lists it, you can ask for an exception while you get it "
        "delisted. Paste the bounce you received, the IP address of your mail server, "
        "an address where we can reach you, and why we should accept its mail. We check "
        "the bounce and our records at once and tell you whether an exception can help; "
        "our support desk decides on the rest.</p>", *errors,
        f'<form method="post" action="{PATH}">',
        '<p><label>The bounce (the whole error message, as you received it)<br>'
        f'<textarea name="bounce" rows="16" cols="90" required>{v.get("bounce", "")}'
        "</textarea></label></p>",
        '<p><label>IP address of your mail server<br>'
        f'<input name="ip" size="40" required value="{v.get("ip", "")}"></label></p>',
        '<p><label>Your contact address<br>'
        f'<input name="contact" type="email" size="40" required value="{v.get("contact", "")}">'
        "</label></p>",
        '<p><label>Why should we accept mail from this server?<br>'
        f'<textarea name="reason" rows="4" cols="90" maxlength="{MAX_REASON}" required>'
        f'{v.get("reason", "")}</textarea></label></p>',
        '<p><button type="submit">Send the request</button></p>', "</form>"])


def answer(ref: str, ip: str, contact: str, assessment, listings, records,
           bounce_title: str) -> str:
    """What the page says once the request is filed (``bounce_title``: the explainer's
    verdict on the bounce)."""
    body = [f"<p>Your request is filed as <strong>{escape(ref)}</strong>: quote it when you "
            "write to us.</p>", *_bounce_says(records, ip, bounce_title),
            *OUTCOME_TEXT[assessment.outcome](ip, contact, assessment, listings, records)]
    return _page(f"Whitehole request {ref}", body)


def _bounce_says(records, ip: str, title: str) -> list[str]:
    lines = [f"<p>Your bounce: {escape(title)}.</p>"]
    if records.bounce_ip and records.bounce_ip != ip:
        lines.append(f"<p>Note: the bounce names the sending server {escape(records.bounce_ip)}"
                     f", not {escape(ip)}. A whitelist entry applies only to the address "
                     "you gave.</p>")
    return lines


def _eligible(ip, contact, assessment, listings, records) -> list[str]:
    zones = ", ".join(assessment.listed_on) or "a public blocklist"
    urls = "".join(f'<li>{escape(l.zone)}: <a href="{escape(l.lookup_url)}">'
                   f"{escape(l.lookup_url)}</a></li>" for l in listings if l.state == "listed")
    return [f"<p><strong>What happens next:</strong> our server refused mail from "
            f"{escape(ip)} because {escape(zones)} lists it. Our support desk reviews your "
            f"request and answers you at {escape(contact)}. An exception is granted for a "
            "limited time; the lasting fix is to remove the cause of the listing and ask "
            "for delisting.</p>", f"<ul>{urls}</ul>" if urls else ""]


def _delisted(ip, contact, assessment, listings, records) -> list[str]:
    return [f"<p><strong>No exception is needed:</strong> our server refused mail from "
            f"{escape(ip)} because of a blocklist listing, but it is not listed any more. "
            "Mail from it is accepted again: send the message again.</p>"]


def _no_refusal(ip, contact, assessment, listings, records) -> list[str]:
    return [f"<p><strong>This request cannot succeed:</strong> we have no record of "
            f"refusing mail from {escape(ip)} recently, so a whitelist entry would change "
            "nothing. Check that this is the address of the server that connected to ours "
            "(the bounce usually names it), or ask the recipient's provider: the refusal "
            "may not have come from us.</p>"]


def _not_dnsbl(ip, contact, assessment, listings, records) -> list[str]:
    if assessment.kind == "unknown_user":
        address = records.bounce_recipient
        named = f" {escape(address)}" if address else ""
        return [f"<p><strong>This request cannot succeed:</strong> the mail was refused "
                f"because the address{named} does not exist here. A whitelist entry cannot "
                "make it exist: check the address for a typing mistake (ask the recipient "
                "for the right spelling) and send the message again.</p>"]
    return [f"<p><strong>A whitelist entry cannot help here:</strong> the refusal was "
            f"{escape(assessment.title)}, not a blocklist listing.</p>",
            f"<p>{escape(assessment.sender_advice)}</p>"]


def _whitelisted(ip, contact, assessment, listings, records) -> list[str]:
    return [f"<p><strong>Nothing to request:</strong> {escape(ip)} is already on our "
            "whitelist, so blocklists do not stop its mail. If mail is still refused, the "
            "reason is another one: your bounce says what it is.</p>"]


OUTCOME_TEXT = {"eligible": _eligible, "delisted": _delisted, "no_refusal": _no_refusal,
                "not_dnsbl": _not_dnsbl, "whitelisted": _whitelisted}


def message(title: str, text: str) -> str:
    """A short page: a refusal of the form (too many requests, too large, not HTTPS)."""
    return _page(title, [f"<p>{escape(text)}</p>"])
