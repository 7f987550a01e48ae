"""The admin commands against a running server (issue 15, items 12 and 15).

An expunge made with ``mailstack mailbox expunge`` is announced to an IMAP client idling
on the folder, and a message held with ``mailstack queue hold`` is not delivered
until ``mailstack queue release``: a real DNS server and SMTP sink, as tests/e2e/
test_outbound.py sets them up.
"""

from __future__ import annotations

import imaplib
import time

import pytest

from mailstack.store import mailboxes, queue
from tests.e2e.test_imap_extensions import start_idle, stop_idle, wait_for
from tests.e2e.test_outbound import PASSWORD, overrides, submit, world  # noqa: F401 (fixture)
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def message(sender: str, subject: str) -> bytes:
    return (f"From: {sender}\r\nTo: ann@example.test\r\nSubject: {subject}\r\n\r\n"
            "hello\r\n").encode()


def test_an_expunge_from_the_cli_wakes_an_idling_imap_session(make_server, cli):
    """The CLI is another process: the session hears of it through the folder's change log
    (NOTIFY on PostgreSQL, the modseq poll on SQLite), in IDLE, without asking."""
    server = make_server(imap={"idle_poll": 0.2})
    ann = server.add_account("ann@example.test", PASSWORD)
    for sender, subject in (("bob@remote.test", "one"), ("carol@remote.test", "two"),
                            ("bob@remote.test", "three")):
        server.db(mailboxes.deliver, [ann], message(sender, subject), server.now())
    with imaplib.IMAP4("127.0.0.1", server.port("imap")) as imap:
        imap.starttls(ssl_context=server.context)
        imap.login("ann@example.test", PASSWORD)
        assert imap.select("INBOX") == ("OK", [b"3"])
        assert cli.ok("mailbox", "search", "ann@example.test", "INBOX", "FROM", "bob").split() == [
            "1", "3"]
        tag = start_idle(imap)
        done = cli.ok("mailbox", "expunge", "ann@example.test", "INBOX", "FROM", "bob", "--yes")
        assert done.startswith("2 message(s) expunged")
        announced = [wait_for(imap, rb"EXPUNGE", 10)[0] for _ in range(2)]
        assert stop_idle(imap, tag).startswith(tag + b" OK")
        left = ["one", "two", "three"]      # each EXPUNGE renumbers the ones after it
        for line in announced:
            del left[int(line.split()[1]) - 1]
        assert left == ["two"]
        assert imap.uid("SEARCH", None, "ALL") == ("OK", [b"2"])
        typ, data = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: two" in data[0][1]


def test_a_held_message_waits_and_a_released_one_is_delivered(make_server, world, cli):  # noqa
    ns, sink = world
    mta = make_server(**overrides(ns, sink))
    mta.add_account("ann@example.test", PASSWORD)
    sink.state.replies["x@remote.test"] = "451 4.2.0 try later"
    submit(mta, ["x@remote.test"], subject="held")
    (row,) = eventually(lambda: [r for r in mta.db(queue.listing) if r.attempts == 1])
    assert "1 recipient(s)" in cli.ok("queue", "hold", row.queue_id)
    del sink.state.replies["x@remote.test"]
    mta.advance(301)                       # past the retry: due, but held
    mta.advance(60)                        # and a pass of the runner on its interval
    time.sleep(0.5)
    assert sink.messages == []
    (held,) = mta.db(queue.listing)
    assert (held.status, held.attempts) == ("held", 1)
    assert "held" in cli.ok("queue", "list")
    cli.ok("queue", "release", row.queue_id)
    mta.advance(60)                        # the next pass takes it
    (got,) = eventually(lambda: sink.messages, what="delivery after release")
    assert got.recipients == ["x@remote.test"] and b"Subject: held" in got.body
    eventually(lambda: mta.db(queue.listing) == [], what="queue empty")
