"""The "is my mail program set up right?" page (``/check`` on the HTTPS listener).

Why: the customers who still send passwords in the clear or relay through a POP-before-SMTP
window are the least technical ones.  After changing their settings they log in here with
their mail password and see, line by line, what their mail program did recently -- each
login and each send with a plain verdict -- and at the top whether they are ready for the
change or what is left to fix, with the help page.  The same verdict words as the reflector.
Below, their SPAM Blocker switch, which they change with a form (``selfcheck_spam``).

Standards: RFC 7617 (HTTP Basic authentication), RFC 9110 §15.5.2/§15.5.4 (401, 403).
Security: credentials are accepted only under TLS (a plain-HTTP request gets 403 and its
credentials are never checked, so the page is no password oracle in the clear); the login
goes through the shared realm, which records it and throttles failures; the page shows
only the logged-in account's own rows; every value is HTML-escaped, the page has no
script and a ``default-src 'none'`` CSP (forms post to the page itself only), and is
never cached; its one form needs a token keyed with the account's password hash and is
refused from another site (``selfcheck_spam``); errors never carry exception text.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html import escape
from urllib.parse import quote

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.web import resource
from zope.interface import Interface

from mailstack import clock as clocks
from mailstack.logs import SessionLog, new_session_id
from mailstack.policy import client_settings
from mailstack.protocols import selfcheck_spam
from mailstack.protocols.http_answer import later, send
from mailstack.realm.checker import TemporaryAuthFailure
from mailstack.realm.credentials import SessionCredentials
from mailstack.store import selfcheck as store, spam_settings
from mailstack.store.errors import StoreUnavailable

PERIOD = timedelta(days=30)
ROWS = 50
AUTH_REALM = b'Basic realm="mail settings check"'
READY = "ready"
CLEARTEXT = "sent your password without encryption: turn on SSL/TLS"
POP_BEFORE_SMTP = "uses POP before SMTP: turn on SMTP authentication"
TEXT = b"text/plain; charset=utf-8"
HTML = b"text/html; charset=utf-8"


class ISelfCheckUser(Interface):
    """An account looking at its own mail settings check (the avatar is its AccountRef)."""


def register_avatars(realm) -> None:
    """The check's avatar is the ``AccountRef`` itself."""
    realm.register(ISelfCheckUser, lambda account, mind: account)


def login_verdict(event) -> str:
    return READY if event.tls else CLEARTEXT


def send_verdict(entry) -> str:
    if entry.method != "auth":
        return POP_BEFORE_SMTP
    return READY if entry.tls else CLEARTEXT


class SelfCheck(resource.Resource):
    isLeaf = True

    def __init__(self, config, db, clock, portal):
        # The whole config: the page names the host, ports, help page and phase dates.
        super().__init__()
        self.config, self.db, self.clock, self.portal = config, db, clock, portal

    # twisted.web's Resource.render dispatches GET (and HEAD) here; we answer asynchronously
    # with NOT_DONE_YET because the login and the queries leave the reactor.
    def render_GET(self, request):
        return self._render(request, self._answer)

    # POST: the SPAM Blocker form (``selfcheck_spam``); the same TLS-only login.
    def render_POST(self, request):
        return self._render(request, self._change)

    def _render(self, request, answer):
        address = request.getClientAddress()
        client_ip = getattr(address, "host", str(address))
        log = SessionLog("mailstack.selfcheck", new_session_id(), client_ip)
        if not request.isSecure():
            log.info("selfcheck refused: plain http")
            return send(request, 403, TEXT, self._use_https().encode())

        def failed(failure):
            log.failure("selfcheck failed", failure)
            return 500, TEXT, b"temporary problem, try again later\n"

        return later(request, answer(request, client_ip, log), failed)

    def _use_https(self) -> str:
        port = self.config.client_setup.https_port
        host = client_settings.hostname(self.config) + ("" if port == 443 else f":{port}")
        return ("This page asks for your password, so it works only over an encrypted "
                f"connection: open https://{host}/check instead.\n")

    @defer.inlineCallbacks
    def _login(self, request, client_ip: str):
        """(account, logout, None) of the Basic credentials, or (None, None, the answer
        to send instead)."""
        user, password = request.getUser(), request.getPassword()
        if not user:
            return None, None, _challenge("Log in with your e-mail address and mail password.\n")
        credentials = SessionCredentials(username=user, password=password, protocol="http",
                                         client_ip=client_ip, tls=True, mechanism="BASIC")
        try:
            _, account, logout = yield self.portal.login(credentials, None, ISelfCheckUser)
        except UnauthorizedLogin:
            return None, None, _challenge("Wrong e-mail address or password.\n")
        except TemporaryAuthFailure:
            return None, None, _busy()
        return account, logout, None

    @defer.inlineCallbacks
    def _answer(self, request, client_ip: str, log: SessionLog):
        account, logout, refusal = yield self._login(request, client_ip)
        if refusal is not None:
            return refusal
        try:
            now = clocks.now(self.clock)
            activity = yield self.db.read(store.recent_activity, account.id, now - PERIOD, ROWS)
            spam, password_hash = yield self.db.read(store.spam_form, account.id)
        except StoreUnavailable:
            return _busy()
        finally:
            logout()
        fixes = _fixes(activity)
        log.info("selfcheck shown user={user} logins={logins} sends={sends} verdict={verdict}",
                 user=account.address, logins=len(activity.logins), sends=len(activity.sends),
                 verdict="fix" if fixes else "ready")
        form = selfcheck_spam.section(spam, selfcheck_spam.token(password_hash, account.id),
                                      saved=request.args.get(b"saved") == [b"1"])
        page = self._page(account.address, activity, fixes, now, form)
        return 200, HTML, page.encode("utf-8")

    @defer.inlineCallbacks
    def _change(self, request, client_ip: str, log: SessionLog):
        """The SPAM Blocker form: checked (cross-site, token), saved, 303 to the page."""
        if selfcheck_spam.cross_site(request):
            log.warn("selfcheck form refused: posted from another site")
            return 403, TEXT, b"this form can only be sent from its own page\n"
        account, logout, refusal = yield self._login(request, client_ip)
        if refusal is not None:
            return refusal
        fields = selfcheck_spam.submitted(request)
        try:
            _, password_hash = yield self.db.read(store.spam_form, account.id)
            if not selfcheck_spam.valid(fields.get("token", ""), password_hash, account.id):
                log.warn("selfcheck form refused: bad token user={user}", user=account.address)
                return 403, TEXT, b"this form has expired: reload the page and try again\n"
            on, tag = fields.get("blocker") == "on", fields.get("tag_subject") == "on"
            yield self.db.run(spam_settings.set_blocker, account.id, on, tag)
        except StoreUnavailable:
            return _busy()
        finally:
            logout()
        log.info("selfcheck SPAM Blocker user={user} on={on} tag_subject={tag}",
                 user=account.address, on=on, tag=tag)
        return 303, TEXT, b"saved\n", {b"location": b"/check?saved=1"}

    # --- the page -----------------------------------------------------------------------

    def _page(self, address: str, activity, fixes: list[str], now: datetime,
              form: str = "") -> str:
        parts = [
            "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            "<title>Mail settings check</title></head><body>",
            f"<h1>Mail settings check for {escape(address)}</h1>",
            f"<p>What your mail programs did in the last {PERIOD.days} days, up to "
            f"{escape(_when(now))}. All times are UTC.</p>",
            self._summary(activity, fixes),
            "<h2>Recent logins</h2>", _logins_table(activity.logins),
            "<h2>Recent sends</h2>", _sends_table(activity.sends), form,
            "<h2>iPhone, iPad and Mac</h2>",
            f'<p><a href="/apple/mail.mobileconfig?emailaddress={quote(address)}">Install the '
            "mail settings profile</a> (Settings asks for your password; nothing else to "
            "type).</p>",
            "</body></html>", ""]
        return "\n".join(parts)

    def _summary(self, activity, fixes: list[str]) -> str:
        if not activity.logins and not activity.sends:
            return ("<p><strong>Verdict: nothing to judge yet.</strong> We have not seen your "
                    "mail program recently: fetch or send a message, then reload this page.</p>")
        if not fixes:
            return ("<p><strong>Verdict: ready for the change.</strong> Your mail programs "
                    "use encryption and SMTP authentication: nothing to do.</p>")
        items = "".join(f"<li>{escape(fix)}</li>" for fix in fixes + self._dates(fixes))
        help_url = escape(self.config.submission.help_url)
        return ("<p><strong>Verdict: not ready for the change yet.</strong> Please change "
                f"the settings of your mail program:</p>\n<ul>{items}</ul>\n"
                f'<p>Step-by-step help: <a href="{help_url}">{help_url}</a></p>')

    def _dates(self, fixes: list[str]) -> list[str]:
        dates = []
        sunset = self.config.pop_before_smtp.sunset
        if POP_BEFORE_SMTP in fixes and sunset is not None:
            dates.append(f"POP before SMTP stops working on {_when(sunset)}.")
        cutover = self.config.auth.tls_cutover
        if CLEARTEXT in fixes and cutover is not None:
            dates.append(f"Passwords without encryption are refused from {_when(cutover)}.")
        return dates


def _fixes(activity) -> list[str]:
    found = {login_verdict(e) for e in activity.logins} | {send_verdict(s) for s in activity.sends}
    return [fix for fix in (CLEARTEXT, POP_BEFORE_SMTP) if fix in found]


def _logins_table(events) -> str:
    if not events:
        return "<p>No logins.</p>"
    rows = [(_when(e.at), e.protocol.upper(), e.client_ip, _yes_no(e.tls), e.mechanism,
             login_verdict(e)) for e in events]
    return _table(("Time (UTC)", "Protocol", "Client IP", "TLS", "Mechanism", "Verdict"), rows)


def _sends_table(entries) -> str:
    if not entries:
        return "<p>No messages sent.</p>"
    rows = [(_when(s.at), s.client_ip,
             "SMTP authentication" if s.method == "auth" else "POP before SMTP",
             _yes_no(s.tls), send_verdict(s)) for s in entries]
    return _table(("Time (UTC)", "Client IP", "Method", "TLS", "Verdict"), rows)


def _table(headings, rows) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    body = "\n".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
                     for row in rows)
    return f'<table border="1">\n<tr>{head}</tr>\n{body}\n</table>'


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _challenge(text: str):
    return 401, TEXT, text.encode(), {b"www-authenticate": AUTH_REALM}


def _busy():
    return 503, TEXT, b"temporary problem, try again in a few minutes\n", {b"retry-after": b"60"}
