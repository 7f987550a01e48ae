"""MAIL and RCPT: the envelope of one mail transaction (RFC 5321 §4.1.1.2, §4.1.1.3).

Why a module of its own: the session (``esmtp``) speaks the protocol -- greeting, limits,
STARTTLS, the in-order queue; this is what one transaction collects before DATA
(``smtp_data``) takes it: the reverse-path with its SIZE and BODY parameters (RFC 1870,
RFC 6152), and each forward-path the port's policy accepted.  Whether a sender or a
recipient is allowed is the ``policy`` object's to say; this module parses, normalises,
asks and answers.  ``SMTPSession`` mixes it in.

Standards: RFC 5321 §4.1.1.2, §4.1.1.3, §4.5.1 (postmaster), RFC 1870, RFC 6152.
Security: paths are normalised by ``addresses`` (relay tricks such as ``%``, ``!`` and
source routes refused); recipients per message are bounded; a store outage while checking
a recipient is 451, never a permanent refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from twisted.internet import defer

from mailstack import addresses, replies
from mailstack.replies import Reply
from mailstack.store.errors import StoreUnavailable


@dataclass
class Envelope:
    sender: str | None = None          # "" is the null reverse-path
    recipients: list = field(default_factory=list)   # what policy.check_recipient returned
    addresses: list = field(default_factory=list)
    body_8bit: bool = False
    declared_size: int | None = None   # MAIL FROM SIZE= (RFC 1870), checked against quotas
    account: object = None             # who is sending: AUTH login or POP-before-SMTP window
    method: str | None = None          # "auth" | "pop-before-smtp"


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
        return defer.maybeDeferred(self.policy.check_sender, self, path).addCallback(
            self._sender_checked, path)

    def _sender_checked(self, rejection, sender):
        if rejection is not None:
            self.log.info("MAIL FROM <{sender}> refused: {reply}", sender=sender, reply=str(rejection))
            return self.refuse(rejection)
        self.envelope.sender = sender
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
        if len(self.envelope.recipients) >= self.parts.config.smtp.max_recipients:
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
        return defer.maybeDeferred(self.policy.check_recipient, self, address).addCallbacks(
            self._recipient_checked, self._recipient_failed, callbackArgs=(address,),
            errbackArgs=(address,))

    def _recipient_checked(self, outcome, address):
        rejection, accepted = outcome
        if rejection is not None:
            self.log.info("RCPT TO <{rcpt}> refused: {reply}", rcpt=address, reply=str(rejection))
            return self.refuse(rejection)
        self.envelope.recipients.append(accepted)
        self.envelope.addresses.append(address)
        self.log.info("RCPT TO <{rcpt}>", rcpt=address)
        self.reply(replies.RECIPIENT_OK)

    def _recipient_failed(self, failure, address):
        failure.trap(StoreUnavailable)
        self.log.warn("RCPT TO <{rcpt}> deferred: store unavailable", rcpt=address)
        self.reply(replies.STORE_UNAVAILABLE)


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
