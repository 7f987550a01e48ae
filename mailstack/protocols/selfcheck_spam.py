"""The SPAM Blocker part of the self-check page (``/check``, issue 18): the customer sees
their switch and subject tag and changes them with a form that POSTs to ``/check``.

Why a form protected like this: the page logs in with HTTP Basic, and a browser sends
cached Basic credentials with a form another site makes it post (cross-site request
forgery).  So a change needs (1) a token only the page shows: an HMAC keyed with the
account's password hash (stored server-side, shared by every node, changed by a new
password) over the account id and this form's purpose -- another site cannot read the
page, so cannot know it; (2) no ``Origin`` but our own and no ``Sec-Fetch-Site:
cross-site`` (what browsers add to such a post).  The answer is a ``303`` back to the
page (POST/redirect/GET), which then shows the new state.

Standards: RFC 9110 §15.4.4 (303), RFC 6454 §7 (Origin), HTML's
application/x-www-form-urlencoded, W3C Fetch Metadata (Sec-Fetch-Site).
Security: the token compares in constant time; the form body is read up to 4 KB; the
page's CSP allows form posts to itself only (``form-action 'self'``); every value shown
is escaped.
"""

from __future__ import annotations

import hashlib
import hmac
from html import escape
from urllib.parse import parse_qs

PURPOSE = b"mailstack selfcheck spam-blocker form"
FORM_LIMIT = 4096


def token(password_hash: str, account_id: int) -> str:
    """The form's token for this account and password."""
    return hmac.new(password_hash.encode("utf-8"), PURPOSE + b" %d" % account_id,
                    hashlib.sha256).hexdigest()


def valid(given: str, password_hash: str, account_id: int) -> bool:
    return hmac.compare_digest(given.encode("ascii", "replace"),
                               token(password_hash, account_id).encode("ascii"))


def cross_site(request) -> bool:
    """Whether the browser says this post came from another site."""
    if (request.getHeader(b"sec-fetch-site") or b"").lower() == b"cross-site":
        return True
    origin = request.getHeader(b"origin")
    if origin is None:
        return False                  # curl, old browsers: the token still decides
    host = request.getHeader(b"host") or request.getRequestHostname()
    return origin.lower() != b"https://" + host.lower()


def submitted(request) -> dict[str, str]:
    """The form's fields (the first value of each), from at most FORM_LIMIT octets."""
    request.content.seek(0)
    body = request.content.read(FORM_LIMIT + 1)
    if len(body) > FORM_LIMIT:
        return {}
    fields = parse_qs(body.decode("ascii", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def section(settings, form_token: str, saved: bool = False) -> str:
    """The page's SPAM Blocker section: the state in words and the form."""
    state = "on" if settings.blocker else "off"
    what = ("mail our filter finds probably spam goes to your Junk folder"
            if settings.blocker else "probable spam arrives in your INBOX, marked "
            "<code>X-Spam-Status: Yes</code>")
    return "\n".join([
        "<h2>SPAM Blocker</h2>",
        f"<p>SPAM Blocker is <strong>{state}</strong>: {what}."
        + (" Settings saved." if saved else "") + "</p>",
        '<form method="post" action="/check">',
        f'<input type="hidden" name="token" value="{escape(form_token)}">',
        _box("blocker", settings.blocker, "File probable spam in my Junk folder"),
        _box("tag_subject", settings.tag_subject,
             "Put [SPAM] in front of the subject of mail filed in Junk"),
        '<p><button type="submit">Save</button></p>', "</form>"])


def _box(name: str, checked: bool, label: str) -> str:
    return (f'<p><label><input type="checkbox" name="{name}" value="on"'
            f'{" checked" if checked else ""}> {escape(label)}</label></p>')
