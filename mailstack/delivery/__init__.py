"""Delivery: an accepted message into local mailboxes and the outbound queue, and the queue
sent on: ``routing`` (local copies and queued remote recipients in one transaction),
``outbound`` (the queue runner), ``smtp_client``, ``retry`` (the schedule) and ``bounce``
(DSNs, RFC 3464)."""
