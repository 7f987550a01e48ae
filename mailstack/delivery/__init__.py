"""Delivery: into local mailboxes now; the outbound queue joins later."""
