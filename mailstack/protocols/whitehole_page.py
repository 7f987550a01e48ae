"""The whitehole request page (``/whitehole`` on the HTTPS listener, issue 21, item 3).

Why: our notices tell senders whose mail we refused to send us the bounce, their server's
IP and a reason.  Here their administrator does it themselves, without a login: the page
runs the explainer on the bounce (``desk/whitehole.py``), asks the configured DNSBLs about
the IP through our resolver, reads our blocks and refusals of it, stores the request with
those findings (``store/whitehole_requests.py``) and answers at once with a reference and
whether an exception can help at all.  The desk decides with ``mailstack whitelist
requests``.

Standards: RFC 6585 §4 (429), RFC 9110 §15.5.14 (413), RFC 6454 §7 (Origin), HTML forms.
Security: TLS only (plain HTTP gets 403 and nothing is read); submissions are limited per
client IP (``rate_limit.PerClientRate``, ``[whitehole] requests_per_minute``: 429 with
Retry-After) before the body is looked at; the body is read up to ``MAX_FORM`` octets and
each field is bounded; a post from another site's page is refused as on the self-check
page (no login here, so no token: ``Origin``/``Sec-Fetch-Site`` only); the explainer and
every query run in the database threads and the DNSBL lookups are asynchronous, so the
reactor never waits; the answer escapes everything (``whitehole_html``), has the
self-check page's CSP and is never cached; errors never carry exception text.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import parse_qs

from twisted.internet import defer
from twisted.web import resource

from mailstack import addresses, clock as clocks, dns
from mailstack.desk import whitehole
from mailstack.logs import SessionLog, new_session_id
from mailstack.policy import client_settings, dnsbl
from mailstack.protocols import selfcheck, selfcheck_spam, whitehole_html as html
from mailstack.protocols.http_answer import later, send
from mailstack.protocols.rate_limit import PerClientRate
from mailstack.store import whitehole_requests
from mailstack.store.errors import StoreUnavailable

HTML = b"text/html; charset=utf-8"
MAX_FORM = 3 * whitehole_requests.MAX_BOUNCE + 16 * 1024    # percent-encoding triples
FIELDS = ("bounce", "ip", "contact", "reason")


@dataclass(frozen=True)
class Submission:
    bounce: str
    ip: str
    contact: str
    reason: str


class WhiteholePage(resource.Resource):
    isLeaf = True

    def __init__(self, config, db, clock, resolver):
        # The whole config: the DNSBLs ([antispam]), the limit ([whitehole]), our names.
        super().__init__()
        self.db, self.clock = db, clock
        self.limiter = PerClientRate(clock, config.whitehole.requests_per_minute)
        lists = config.antispam.dnsbl if resolver is not None else ()
        self.listed = dnsbl.Listed(resolver, lists, clock) if lists else None
        self.hostnames = {config.server.hostname, client_settings.hostname(config)}
        port = config.client_setup.https_port
        self.url = (f"https://{client_settings.hostname(config)}"
                    f"{'' if port == 443 else f':{port}'}{html.PATH}")

    # twisted.web's Resource.render dispatches GET (and HEAD) here: the form, no work.
    def render_GET(self, request):
        if not request.isSecure():
            return send(request, 403, *self._https_only())
        return send(request, 200, HTML, html.form().encode("utf-8"))

    def render_POST(self, request):
        client_ip = getattr(request.getClientAddress(), "host", "")
        log = SessionLog("mailstack.whitehole", new_session_id(), client_ip)
        refusal = self._refusal(request, client_ip, log)
        if refusal is not None:
            return send(request, *refusal)
        fields = _fields(request)
        if fields is None:
            return send(request, 413, HTML, html.message(
                "Too large", "The form is too large: paste at most 64 KB of the bounce.").encode())
        submission, problems = _checked(fields)
        if problems:
            return send(request, 400, HTML, html.form(fields, problems).encode("utf-8"))

        def failed(failure):
            if not failure.check(StoreUnavailable):
                log.failure("whitehole request failed", failure)
            return (503, selfcheck.TEXT, b"temporary problem, try again in a few minutes\n",
                    {b"retry-after": b"60"})

        return later(request, self._file(submission, client_ip, log), failed)

    def _refusal(self, request, client_ip: str, log: SessionLog):
        """The answer that refuses this post before its body is read, if any."""
        if not request.isSecure():
            return (403, *self._https_only())
        if selfcheck_spam.cross_site(request):
            log.warn("whitehole form refused: posted from another site")
            return 403, selfcheck.TEXT, b"this form can only be sent from its own page\n"
        wait = self.limiter.admit(client_ip)
        if wait:
            log.warn("whitehole form refused: over the rate limit")
            return (429, HTML, html.message("Too many requests", "Too many requests from "
                    f"your address: try again in {int(wait)} seconds.").encode(),
                    {b"retry-after": str(int(wait)).encode()})
        return None

    def _https_only(self):
        return selfcheck.TEXT, (f"This form works only over an encrypted connection: open "
                                f"{self.url} instead.\n").encode()

    @defer.inlineCallbacks
    def _file(self, s: Submission, client_ip: str, log: SessionLog):
        now = clocks.now(self.clock)
        try:
            records, listings = yield defer.gatherResults(
                [self.db.read(whitehole.gather, s.bounce, s.ip, now, self.hostnames),
                 self._listings(s.ip)], consumeErrors=True)
        except defer.FirstError as e:
            e.subFailure.raiseException()
        assessment = whitehole.assess(records, listings)
        filing = whitehole_requests.Filing(
            client_ip, s.ip, s.contact, s.reason, s.bounce, records.verdict,
            assessment.outcome, whitehole.findings(records, listings, assessment),
            assessment.open)
        filed = yield self.db.run(whitehole_requests.file, filing, now)
        log.info("whitehole request {ref} ip={ip} verdict={verdict} outcome={outcome}",
                 ref=filed.ref, ip=s.ip, verdict=records.verdict, outcome=assessment.outcome)
        page = html.answer(filed.ref, s.ip, s.contact, assessment, listings, records,
                           whitehole.verdict_title(records))
        return 200, HTML, page.encode("utf-8")

    @defer.inlineCallbacks
    def _listings(self, ip: str):
        if self.listed is None:
            return []
        results = yield self.listed.query(ip)
        return [whitehole.Listing(l.zone, _state(l, o), l.lookup_url(ip)) for l, o in results]


def _state(dnsbl_list, outcome) -> str:
    if isinstance(outcome, dns.Found) and any(dnsbl_list.counts(c) for c in outcome.value[0]):
        return "listed"
    return "failed" if isinstance(outcome, dns.TempFail) else "clean"


def _fields(request) -> dict[str, str] | None:
    """The form's fields (first value each), or None when the body is over MAX_FORM."""
    request.content.seek(0)
    body = request.content.read(MAX_FORM + 1)
    if len(body) > MAX_FORM:
        return None
    try:
        parsed = parse_qs(body.decode("ascii", "replace"), keep_blank_values=True,
                          max_num_fields=20)
    except ValueError:
        return {}
    return {name: values[0] for name, values in parsed.items() if name in FIELDS}


def _checked(fields: dict[str, str]) -> tuple[Submission | None, list[str]]:
    problems = []
    bounce = fields.get("bounce", "").strip()
    if not bounce:
        problems.append("Paste the bounce.")
    elif len(bounce.encode("utf-8")) > whitehole_requests.MAX_BOUNCE:
        problems.append("The bounce is too long: paste at most 64 KB of it.")
    try:
        ip = ipaddress.ip_address(fields.get("ip", "").strip()).compressed
    except ValueError:
        ip = ""
        problems.append("Give the IP address of your mail server, like 192.0.2.7.")
    try:
        contact = addresses.normalise(fields.get("contact", "").strip())
    except addresses.AddressError:
        contact = ""
        problems.append("Give an e-mail address where we can reach you.")
    reason = fields.get("reason", "").strip()
    if not reason or len(reason) > html.MAX_REASON:
        problems.append(f"Say why in at most {html.MAX_REASON} characters.")
    return (None if problems else Submission(bounce, ip, contact, reason)), problems
