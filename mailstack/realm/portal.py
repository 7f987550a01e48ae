"""The realm and portal shared by every protocol.

Why injected avatar factories: the realm must not import protocol code (layering: realm ←
protocols), yet POP3 wants an ``IMailbox`` and IMAP an ``IAccount``.  ``service.py`` hands
in one factory per interface; each gets the ``AccountRef`` and may return a Deferred.
"""

from __future__ import annotations

from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer
from zope.interface import implementer


@implementer(IRealm)
class MailRealm:
    def __init__(self, avatar_factories=None):
        self.avatar_factories = dict(avatar_factories or {})

    def register(self, interface, factory) -> None:
        self.avatar_factories[interface] = factory

    @defer.inlineCallbacks
    def requestAvatar(self, avatar_id, mind, *interfaces):
        for interface in interfaces:
            factory = self.avatar_factories.get(interface)
            if factory is not None:
                avatar = yield factory(avatar_id, mind)
                logout = getattr(avatar, "logout", None) or (lambda: None)
                return interface, avatar, logout
        raise NotImplementedError("no avatar for the requested interfaces")


def make_portal(realm: MailRealm, checker) -> Portal:
    return Portal(realm, [checker])
