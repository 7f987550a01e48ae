"""MAIL and RCPT: the envelope of one mail transaction (RFC 5321 §4.1.1.2, §4.1.1.3).

Why a module of its own: the session (``esmtp``) speaks the protocol -- greeting, limits,
STARTTLS, the in-order queue; this is what one transaction collects before DATA
(``smtp_data``) takes it: the reverse-path with its SIZE and BODY parameters (RFC 1870,
RFC 6152), and each forward-path the port's policy accepted.  Whether a sender or a
recipient is allowed is the policy's to say (``policy.contract``): this module parses,
normalises, builds the request, asks, and sends the outcome's reply; what the outcome
accepted (who sends, each recipient) goes into the envelope.  ``SMTPSession`` mixes it in.

Standards: RFC 5321 §4.1.1.2, §4.1.1.3, §4.5.1 (postmaster), RFC 1870, RFC 6152.
Security: paths are normalised by ``addresses`` (relay tricks such as ``%``, ``!`` and
source routes refused); recipients per message are bounded; a store outage while checking
a recipient is 451, never a permanent refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import defer

from mailstack import addresses, replies
from mailstack.policy.outcome import Sender
from mailstack.replies import Reply


@dataclass
class Envelope:
    sender: str | None = None          # "" is the null reverse-path
    recipients: list = field(default_factory=list)   # the policy's Accepted, one per RCPT
    addresses: list = field(default_factory=list)
    body_8bit: bool = False
    declared_size: int | None = None   # MAIL FROM SIZE= (RFC 1870), checked against quotas
    identity: Sender | None = None     # who is sending (AUTH login or a login window)

    @property
    def account(self):
        return self.identity.account if self.identity is not None else None

    @property
    def method(self) -> str | None:
        return self.identity.method if self.identity is not None else None


class EnvelopeCommands:
    """MAIL FROM and RCPT TO, each answered once the policy has."""

    def smtp_MAIL(self, argument):
        if self.helo is None:
            return self.refuse(replies.NEED_HELO)
        if self.envelope.sender is not None:
            return self.refuse(replies.NESTED_MAIL)
        parsed = parse_path(argument, "FROM:")
        if parsed is None:
            return self.refuse(replies.ARGUMENT_ERROR)
        path, params = parsed
        problem = self._mail_parameters(params)
        if problem is not None:
            return self.refuse(problem)
        if path:
            try:
                path = addresses.normalise(path, fqdn=False)
            except addresses.AddressError:
                return self.refuse(replies.BAD_SENDER)
        request = self.request("mail", sender=path, authenticated_as=self.authenticated_as,
                               declared_size=self.envelope.declared_size)
        return defer.maybeDeferred(self.policy.mail, request).addCallback(
            self._sender_checked, path)

    def _sender_checked(self, outcome, sender):
        if outcome.reply is not None:
            self.log.info("MAIL FROM <{sender}> refused: {reply}", sender=sender,
                          reply=str(outcome.reply))
            return self.refuse(outcome.reply)
        self.envelope.sender, self.envelope.identity = sender, outcome.sender
        self.log.info("MAIL FROM <{sender}>", sender=sender)
        self.reply(replies.SENDER_OK)

    def _mail_parameters(self, params) -> Reply | None:
        for key, value in params:
            if key == "SIZE" and value.isdigit():
                if int(value) > self.max_size:
                    return replies.SIZE_DECLARED_TOO_BIG
                self.envelope.declared_size = int(value)
            elif key == "BODY" and value in ("7BIT", "8BITMIME"):
                self.envelope.body_8bit = value == "8BITMIME"
            else:
                return replies.PARAMETER_UNSUPPORTED
        return None

    def smtp_RCPT(self, argument):
        if self.envelope.sender is None:
            return self.refuse(replies.NEED_MAIL)
        parsed = parse_path(argument, "TO:")
        if parsed is None or not parsed[0]:
            return self.refuse(replies.ARGUMENT_ERROR)
        path, params = parsed
        if params:
            return self.refuse(replies.PARAMETER_UNSUPPORTED)
        if len(self.envelope.recipients) >= self.settings.max_recipients:
            return self.refuse(replies.TOO_MANY_RECIPIENTS)
        if path.lower() == "postmaster":   # RFC 5321 §4.5.1: must be accepted unqualified
            path = f"postmaster@{self.policy.postmaster_domain()}"
        try:
            address = addresses.normalise(path)
        except addresses.RelayTrick:
            self.log.info("RCPT TO <{rcpt}> refused: relay trick", rcpt=path[:100])
            return self.refuse(replies.RELAY_DENIED.format(address=path[:254]))
        except addresses.AddressError:
            return self.refuse(replies.BAD_ADDRESS)
        envelope = self.envelope
        request = self.request("rcpt", sender=envelope.sender, recipient=address,
                               authenticated_as=envelope.account,
                               declared_size=envelope.declared_size,
                               recipients=tuple(envelope.recipients))
        return defer.maybeDeferred(self.policy.rcpt, request).addCallback(
            self._recipient_checked, address)

    def _recipient_checked(self, outcome, address):
        if outcome.reply is not None:
            self.log.info("RCPT TO <{rcpt}> refused: {reply}", rcpt=address,
                          reply=str(outcome.reply))
            return self.refuse(outcome.reply)
        self.envelope.recipients.append(outcome.accepted)
        self.envelope.addresses.append(address)
        self.log.info("RCPT TO <{rcpt}>", rcpt=address)
        self.reply(replies.RECIPIENT_OK)


def parse_path(argument: str, prefix: str):
    """``FROM:<a@b> K=V …`` → (``a@b``, [(K, V)]), or None when malformed."""
    if argument[:len(prefix)].upper() != prefix:
        return None
    rest = argument[len(prefix):].lstrip()
    if not rest.startswith("<"):
        return None
    end = rest.find(">")
    if end < 0:
        return None
    path, params = rest[1:end], []
    for word in rest[end + 1:].split():
        key, _, value = word.partition("=")
        params.append((key.upper(), value.upper()))
    return path, params
