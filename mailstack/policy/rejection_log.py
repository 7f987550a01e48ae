"""Every refusal gets a reference id in its reply and a row in the rejection log.

Why the ref in the reply: a customer reads the bounce to the support desk over the phone;
eight characters from an alphabet without 0/O or 1/I find the exact record.  The reply is
sent only after the row is written, so the desk can find it the moment the customer calls
(a store outage does not hold the reply back: the refusal is logged to stdout instead).
"""

from __future__ import annotations

import secrets

from twisted.internet import defer
from twisted.logger import Logger

from mailstack import clock as clocks
from mailstack.metrics import NO_METRICS
from mailstack.replies import Reply
from mailstack.store import rejections
from mailstack.store.errors import StoreUnavailable

log = Logger(namespace="mailstack.policy.rejections")
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def new_ref() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(8))


def with_ref(reply: Reply, ref: str) -> Reply:
    return Reply(reply.code, reply.status, f"{reply.text} (ref {ref})")


class RejectionLog:
    def __init__(self, db, clock, metrics=NO_METRICS):
        self.db, self.clock, self.metrics = db, clock, metrics

    @defer.inlineCallbacks
    def refuse(self, request, decision, stage: str):
        """The reply to send for ``decision``, with its ref, after the row is written."""
        ref = new_ref()
        self.metrics.refused(request.port, decision.check or "unknown", decision.verdict.value)
        reply = with_ref(decision.reply, ref)
        client = request.client
        row = rejections.Rejection(
            ref=ref, at=clocks.now(self.clock), session=request.session, port=request.port,
            stage=stage, check_name=decision.check or "unknown", client_ip=request.client_ip,
            ptr=client.ptr_name if client is not None else None, helo=request.helo,
            mail_from=request.sender, rcpt_to=request.recipient, reply=str(reply),
            detail=decision.reason or "")
        try:
            yield self.db.run(rejections.record, row)
        except StoreUnavailable:
            log.warn("rejection {ref} not recorded (store unavailable): {reply}", ref=ref,
                     reply=str(reply))
        return reply
