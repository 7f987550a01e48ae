"""The HTTP(S) listener: Thunderbird autoconfig, Outlook Autodiscover, Apple profiles,
each hosted domain's MTA-STS policy, the self-check page (``selfcheck.py``) and the
whitehole request page (``whitehole_page.py``).

Why on the mail reactor: the answers depend on the hosted domains (database) and on the
policy in force (injected clock), exactly as the mail listeners do; a separate web server
would need both again.  Off unless a listener with ``protocol = "http"`` is configured.

Standards: Thunderbird autoconfig ``clientConfig`` 1.1; Outlook POX Autodiscover (request
schema 2006, response schema 2006a) and the AutodiscoverV1 JSON redirect; RFC 8461 §3.2
(``/.well-known/mta-sts.txt`` on ``mta-sts.<domain>``, ``text/plain``, the very text whose
hash ``mailstack dns records`` publishes as the ``id=``).
Security: the POST body is capped and parsed without DTDs; an address is "known" by its
domain only (we do not confirm which mailboxes exist: that would help harvesters);
errors get the documented error documents, never a traceback.  The MTA-STS policy is only
as trustworthy as this listener's certificate: senders require it to be valid for
``mta-sts.<domain>`` (RFC 8461 §3.3), so the certificate must name it.
"""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from mailstack import addresses, clock as clocks
from mailstack.policy import client_settings, sender_records
from mailstack.protocols import apple_profile, http_body, selfcheck, whitehole_page
from mailstack.store import directory

log = Logger(namespace="mailstack.http")
MAX_BODY = 16 * 1024
REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
AUTOCONFIG_PATHS = ("/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml")
APPLE_PATH = "/apple/mail.mobileconfig"
MTA_STS_PATH = "/.well-known/mta-sts.txt"


class NotHosted(Exception):
    pass


class BadRequest(Exception):
    pass


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8")


def _sub(parent, tag, text=None, **attrs):
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = str(text)
    return element


class ClientSetup(resource.Resource):
    isLeaf = True

    def __init__(self, config, db, clock, portal, resolver=None):
        # The whole config: the answers name the host, ports and phases of several sections
        # (``policy/client_settings.py``); ``portal`` only for the settings check;
        # ``resolver`` for the whitehole page's DNSBL lookups (one page: its rate limit).
        super().__init__()
        self.config, self.db, self.clock, self.portal = config, db, clock, portal
        self.whitehole = whitehole_page.WhiteholePage(config, db, clock, resolver)

    # --- routing ------------------------------------------------------------------------

    def render_GET(self, request):
        path = request.path.decode("latin-1").lower().rstrip("/")
        if path == "/check":
            return selfcheck.SelfCheck(self.config, self.db, self.clock,
                                       self.portal).render_GET(request)
        if path == whitehole_page.html.PATH:
            return self.whitehole.render_GET(request)
        if path in AUTOCONFIG_PATHS:
            return self._respond(request, self._autoconfig, request)
        if path.startswith("/autodiscover/autodiscover.json"):
            return self._respond(request, self._autodiscover_json, request, path)
        if path == APPLE_PATH:
            return self._respond(request, self._apple_profile, request)
        if path == MTA_STS_PATH:
            return self._respond(request, self._mta_sts_policy, request)
        return self._plain(request, 404, b"not found\n")

    def render_POST(self, request):
        path = request.path.decode("latin-1").lower()
        if path.rstrip("/") == "/check":
            return selfcheck.SelfCheck(self.config, self.db, self.clock,
                                       self.portal).render_POST(request)
        if path.rstrip("/") == whitehole_page.html.PATH:
            return self.whitehole.render_POST(request)
        if path == "/autodiscover/autodiscover.xml":
            return self._respond(request, self._autodiscover_xml, request)
        return self._plain(request, 404, b"not found\n")

    def _respond(self, request, handler, *args):
        finished = []
        request.notifyFinish().addBoth(finished.append)
        d = defer.maybeDeferred(handler, *args)

        def send(result):
            code, content_type, body = result
            if not finished:
                request.setResponseCode(code)
                request.setHeader(b"content-type", content_type)
                request.write(body)
                request.finish()

        def failed(failure):
            log.failure("client setup request failed", failure)
            send((500, b"text/plain; charset=utf-8", b"temporary problem, try again later\n"))
        d.addCallback(send).addErrback(failed)
        return server.NOT_DONE_YET

    @staticmethod
    def _plain(request, code, body):
        request.setResponseCode(code)
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return body

    @defer.inlineCallbacks
    def _hosted_address(self, text: str) -> str:
        try:
            address = addresses.normalise(text.strip())
        except addresses.AddressError:
            raise BadRequest(text) from None
        if not (yield self.db.read(directory.is_hosted, address.rpartition("@")[2])):
            raise NotHosted(address)
        return address

    def _services(self):
        return client_settings.services(self.config, clocks.now(self.clock))

    # --- Thunderbird ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def _autoconfig(self, request):
        raw = request.args.get(b"emailaddress", [b""])[0].decode("utf-8", "replace")
        if not raw:
            host = (request.getRequestHostname() or b"").decode("latin-1").lower()
            raw = "user@" + host.removeprefix("autoconfig.")
        try:
            address = yield self._hosted_address(raw)
        except (NotHosted, BadRequest):
            return 404, b"text/plain; charset=utf-8", b"no such domain here\n"
        domain = address.rpartition("@")[2]
        root = ET.Element("clientConfig", version="1.1")
        provider = _sub(root, "emailProvider", id=domain)
        _sub(provider, "domain", domain)
        _sub(provider, "displayName", self.config.client_setup.display_name)
        _sub(provider, "displayShortName", self.config.client_setup.display_name)
        host = client_settings.hostname(self.config)
        for s in self._services():
            if not s.offered:
                continue
            tag = "outgoingServer" if s.kind == "smtp" else "incomingServer"
            server_ = _sub(provider, tag, type=s.kind)
            _sub(server_, "hostname", host)
            _sub(server_, "port", s.port)
            _sub(server_, "socketType", s.socket)
            _sub(server_, "authentication", s.auth)
            # Always, even where no password is asked (smtp-after-pop, client-IP-address):
            # Thunderbird for Android (K-9) rejects a server without one.
            _sub(server_, "username", "%EMAILADDRESS%")
        return 200, b"application/xml; charset=utf-8", _xml(root)

    # --- Apple -------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _apple_profile(self, request):
        raw = request.args.get(b"emailaddress", [b""])[0].decode("utf-8", "replace")
        try:
            address = yield self._hosted_address(raw)
        except (NotHosted, BadRequest):
            return 404, b"text/plain; charset=utf-8", b"no such domain here\n"
        body = apple_profile.profile(address, self._services(),
                                     client_settings.hostname(self.config),
                                     self.config.client_setup.display_name)
        request.setHeader(b"content-disposition", b'attachment; filename="mail.mobileconfig"')
        return 200, apple_profile.CONTENT_TYPE, body

    # --- MTA-STS -----------------------------------------------------------------------

    @defer.inlineCallbacks
    def _mta_sts_policy(self, request):
        """RFC 8461 §3.2: only on ``mta-sts.<hosted domain>``; the same text for every one."""
        host = (request.getRequestHostname() or b"").decode("latin-1").lower().rstrip(".")
        domain = host.removeprefix("mta-sts.")
        if domain == host or not (yield self.db.read(directory.is_hosted, domain)):
            return 404, b"text/plain; charset=utf-8", b"no such domain here\n"
        return 200, b"text/plain", sender_records.mta_sts_policy(self.config).encode("ascii")

    # --- Outlook ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _autodiscover_xml(self, request):
        body = request.content.read(MAX_BODY + 1)
        try:
            raw = _requested_address(body)
            address = yield self._hosted_address(raw)
        except BadRequest:
            return 200, b"text/xml; charset=utf-8", self._pox_error(600, "Invalid Request")
        except NotHosted:
            return 200, b"text/xml; charset=utf-8", self._pox_error(
                500, "The e-mail address cannot be found.")
        return 200, b"text/xml; charset=utf-8", self._pox_settings(address)

    def _pox_settings(self, address: str) -> bytes:
        root = ET.Element("Autodiscover", xmlns=RESPONSE_NS)
        response = _sub(root, "Response", xmlns=OUTLOOK_NS)
        account = _sub(response, "Account")
        _sub(account, "AccountType", "email")
        _sub(account, "Action", "settings")
        host = client_settings.hostname(self.config)
        seen = set()
        for s in self._services():
            if not s.offered or s.kind in seen:
                continue   # one block per protocol: the preferred (first) one
            seen.add(s.kind)
            protocol = _sub(account, "Protocol")
            _sub(protocol, "Type", s.kind.upper())
            _sub(protocol, "Server", host)
            _sub(protocol, "Port", s.port)
            _sub(protocol, "DomainRequired", "off")
            _sub(protocol, "LoginName", address)
            _sub(protocol, "SPA", "off")
            _sub(protocol, "SSL", "on")
            _sub(protocol, "Encryption", "SSL" if s.socket == "SSL" else "TLS")
            _sub(protocol, "AuthRequired", "on" if s.password else "off")
            if s.auth == "smtp-after-pop":
                _sub(protocol, "SMTPLast", "on")   # read mail (log in to POP3) before sending
        return _xml(root)

    def _pox_error(self, code: int, message: str) -> bytes:
        root = ET.Element("Autodiscover", xmlns=RESPONSE_NS)
        response = _sub(root, "Response")
        at = clocks.now(self.clock).strftime("%H:%M:%S.%f")
        error = _sub(response, "Error", Time=at, Id=str(secrets.randbelow(10**9)))
        _sub(error, "ErrorCode", code)
        _sub(error, "Message", message)
        _sub(error, "DebugData")
        return _xml(root)

    @defer.inlineCallbacks
    def _autodiscover_json(self, request, path):
        raw = request.args.get(b"Email", request.args.get(b"email", [b""]))[0].decode("utf-8", "replace")
        if not raw and "/v1.0/" in path:
            raw = unquote(request.path.decode("latin-1").rsplit("/", 1)[1])
        protocol = request.args.get(b"Protocol", [b"AutodiscoverV1"])[0].decode("latin-1")
        try:
            address = yield self._hosted_address(raw)
        except (BadRequest, NotHosted):
            return 404, b"application/json", json.dumps(
                {"ErrorCode": "MailboxNotFound", "ErrorMessage": "The address is not hosted here"}).encode()
        if protocol.lower() != "autodiscoverv1":
            return 400, b"application/json", json.dumps(
                {"ErrorCode": "ProtocolNotSupported",
                 "ErrorMessage": f"{protocol} is not supported here"}).encode()
        domain = address.rpartition("@")[2]
        port = self.config.client_setup.https_port
        url = f"https://autodiscover.{domain}{'' if port == 443 else f':{port}'}/autodiscover/autodiscover.xml"
        return 200, b"application/json", json.dumps({"Protocol": "AutodiscoverV1", "Url": url}).encode()


def _requested_address(body: bytes) -> str:
    if len(body) > MAX_BODY or b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise BadRequest("oversized or DTD")
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        raise BadRequest("not XML") from None
    found = root.find(f"{{{REQUEST_NS}}}Request/{{{REQUEST_NS}}}EMailAddress")
    if found is None:
        found = root.find("Request/EMailAddress")
    if found is None or not (found.text or "").strip():
        raise BadRequest("no EMailAddress")
    return found.text.strip()


def register_avatars(realm) -> None:
    selfcheck.register_avatars(realm)


def build_factory(config, db, clock, portal, resolver=None):
    """The site of one HTTP listener (every HTTP listener serves the same pages)."""
    site = server.Site(ClientSetup(config, db, clock, portal, resolver))
    site.requestFactory = http_body.BoundedRequest      # bodies kept to MAX_BODY octets
    site.displayTracebacks = False
    site.noisy = False
    return site
