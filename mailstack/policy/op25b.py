"""Outbound Port 25 Blocking (OP25B) for the ISP's own customer networks, in dated phases.

Why: infected customer PCs sending spam straight to other providers' port 25 get the whole
ISP's address space listed.  As Japanese ISPs did from 2006, the block comes in phases:
first only mail towards a listed set of domains (mobile carriers, who asked first), then all
mail leaving on port 25.  Customers keep sending through submission (587/465) with
authentication; before a phase, they may still relay on port 25 with SMTP AUTH or through a
POP-before-SMTP window.  Mail *to* our own domains is never affected (that is the MX's job).

The edge router enforces the final phase by IP (``mailstack op25b export --format nft``);
the domain phase can only be enforced here, by the MX, because routers do not see domains.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime

from mailstack import clock as clocks, replies
from mailstack.policy.decision import DUNNO, reject


class Phases:
    def __init__(self, settings):
        self.settings = settings
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.customer_networks]
        self.domains = {d.lower() for d in settings.op25b_domains}

    def is_customer(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in n for n in self.networks)

    def phase(self, at: datetime) -> str:
        """``none``, ``domains`` or ``all``."""
        s = self.settings
        if s.op25b_all_from is not None and at >= s.op25b_all_from:
            return "all"
        if s.op25b_domains_from is not None and at >= s.op25b_domains_from and self.domains:
            return "domains"
        return "none"

    def blocks(self, ip: str, domain: str, at: datetime) -> bool:
        if not self.is_customer(ip):
            return False
        phase = self.phase(at)
        return phase == "all" or (phase == "domains" and domain.lower() in self.domains)


class OutboundPort25Blocked:
    name = "op25b"

    def __init__(self, settings, clock, help_url: str):
        self.phases, self.clock, self.help_url = Phases(settings), clock, help_url

    def check(self, request):
        route = request.route
        if route is None or route.hosted or not request.recipient:
            return DUNNO
        domain = request.recipient.rpartition("@")[2]
        if not self.phases.blocks(request.client_ip, domain, clocks.now(self.clock)):
            return DUNNO
        return reject(self.name, f"customer network sending to {domain} on port 25",
                      replies.OP25B.format(url=self.help_url))
