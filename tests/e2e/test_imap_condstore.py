"""CONDSTORE and QRESYNC (RFC 7162) over TLS with imaplib's raw commands: MODSEQ and
HIGHESTMODSEQ, FETCH CHANGEDSINCE, STORE UNCHANGEDSINCE and [MODIFIED], SEARCH MODSEQ,
SELECT (QRESYNC ...) with VANISHED (EARLIER), UID FETCH (CHANGEDSINCE n VANISHED),
VANISHED instead of EXPUNGE, CLOSED -- a second session (or POP3, or the store) making
the changes the first one must learn."""

from __future__ import annotations

import imaplib
import re

import pytest

from mailstack.store import mailboxes, vanished
from tests.e2e.test_imap_extensions import LISTENERS, PASSWORD, command, connect, message

pytestmark = pytest.mark.e2e


@pytest.fixture
def box(make_server):
    server = make_server(**LISTENERS)
    server.ann = server.add_account("ann@example.test", PASSWORD)
    for n in range(1, 6):
        server.db(mailboxes.deliver, [server.ann], message(n), server.now())
    return server


def ok(client, text: str) -> list[bytes]:
    status, lines = command(client, text)
    assert status.startswith(b"OK"), (text, status, lines)
    return lines


def code(lines, name: bytes) -> int:
    for line in lines:
        found = re.search(rb"\[" + name + rb" (\d+)\]", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"no {name!r} in {lines}")


def modseqs(client, sequence="1:*") -> dict[int, int]:
    """{uid: modseq} as UID FETCH MODSEQ answers."""
    lines = ok(client, f"UID FETCH {sequence} (MODSEQ)")
    return {int(m.group(1)): int(m.group(2)) for m in
            (re.search(rb"UID (\d+) MODSEQ \((\d+)\)", l) for l in lines) if m}


def other_session(server) -> imaplib.IMAP4_SSL:
    client = connect(server)
    client.select("INBOX")
    return client


def test_capabilities_and_enable(box):
    client = connect(box)
    caps = client.capability()[1][0].split()
    assert b"CONDSTORE" in caps and b"QRESYNC" in caps
    assert ok(client, "ENABLE QRESYNC CONDSTORE X-UNKNOWN") == [b"* ENABLED QRESYNC CONDSTORE"]
    client.logout()


def test_select_condstore_status_and_modseq_grow_with_each_change(box):
    client = connect(box)
    lines = ok(client, "SELECT INBOX (CONDSTORE)")
    highest = code(lines, b"HIGHESTMODSEQ")
    status = ok(client, "STATUS Drafts (HIGHESTMODSEQ MESSAGES)")
    assert re.fullmatch(rb'\* STATUS Drafts \(HIGHESTMODSEQ [1-9]\d* MESSAGES 0\)', status[0])
    before = modseqs(client)
    assert sorted(before) == [1, 2, 3, 4, 5] and max(before.values()) == highest
    lines = ok(client, "STORE 2 +FLAGS (\\Flagged)")          # CONDSTORE on: MODSEQ told
    stored = int(re.search(rb"\* 2 FETCH \(.*MODSEQ \((\d+)\)", lines[0]).group(1))
    assert stored > highest
    ok(client, "APPEND INBOX {5+}\r\nhello")                   # a new message: a new modseq
    box.db(mailboxes.deliver, [box.ann], message(7), box.now())
    ok(client, "NOOP")
    after = modseqs(client)
    assert after[2] == stored and after[6] > stored and after[7] > after[6]
    status = ok(client, "STATUS INBOX (HIGHESTMODSEQ)")[0]
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", status).group(1)) == after[7]
    ok(client, "COPY 1 Drafts")
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", ok(client, "STATUS Drafts (HIGHESTMODSEQ)")[0]
                         ).group(1)) > 1
    client.logout()


def test_fetch_changedsince_answers_only_what_changed(box):
    client = connect(box)
    highest = code(ok(client, "SELECT INBOX (CONDSTORE)"), b"HIGHESTMODSEQ")
    other = other_session(box)
    other.store("3", "+FLAGS", "(\\Seen)")
    lines = ok(client, f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})")
    fetched = [l for l in lines if b" FETCH " in l]
    assert len(fetched) == 1 and fetched[0].startswith(b"* 3 FETCH (")
    assert b"\\Seen" in fetched[0] and b"MODSEQ (" in fetched[0]
    assert ok(client, "FETCH 1:* (FLAGS) (CHANGEDSINCE 999999)") == []
    assert ok(client, "EXAMINE Drafts")[0] == b"* OK [CLOSED] Previous mailbox closed"
    client.logout()
    other.logout()


def test_fetch_modseq_item_enables_condstore_for_unsolicited_fetches(box):
    client = connect(box)
    lines = ok(client, "SELECT INBOX")
    assert not any(b"HIGHESTMODSEQ" in l for l in lines)       # not enabled yet
    lines = ok(client, "FETCH 1 (MODSEQ)")
    assert any(b"OK [HIGHESTMODSEQ " in l for l in lines)
    other = other_session(box)
    other.store("4", "+FLAGS", "(\\Answered)")
    lines = ok(client, "NOOP")
    assert any(re.fullmatch(rb"\* 4 FETCH \(FLAGS \(\\Answered \\Recent\) MODSEQ \(\d+\)\)", l)
               for l in lines), lines
    client.logout()
    other.logout()


def test_store_unchangedsince_fails_for_messages_changed_meanwhile(box):
    client = connect(box)
    ok(client, "SELECT INBOX (CONDSTORE)")
    known = modseqs(client)
    other = other_session(box)
    other.store("2", "+FLAGS", "(\\Flagged)")                  # after the client's read
    status, lines = command(client, f"STORE 1:3 (UNCHANGEDSINCE {max(known.values())}) "
                                    f"+FLAGS.SILENT (\\Seen)")
    assert status.startswith(b"OK [MODIFIED 2]"), status
    told = {int(l.split()[1]) for l in lines if b" FETCH (" in l}
    assert {1, 3} <= told and 2 not in told                     # .SILENT still tells MODSEQ
    flags = box.db(lambda c: {m.uid: m.flags for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, box.ann, "INBOX").id)})
    assert "\\Seen" in flags[1] and "\\Seen" in flags[3] and "\\Seen" not in flags[2]
    status, _ = command(client, f"UID STORE 2,4 (UNCHANGEDSINCE {max(known.values())}) "
                                f"+FLAGS (\\Draft)")
    assert status.startswith(b"OK [MODIFIED 2]")                # UIDs for UID STORE
    status, _ = command(client, "UID STORE 5 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
    assert status.startswith(b"OK [MODIFIED 5]")                # 0 always fails (§3.1.3)
    client.logout()
    other.logout()


def test_search_modseq_answers_the_highest_modseq_found(box):
    client = connect(box)
    ok(client, "SELECT INBOX")
    ok(client, "STORE 2,4 +FLAGS (\\Flagged)")
    current = modseqs(client)
    lines = ok(client, f"SEARCH MODSEQ {current[2]}")
    assert lines[-1] == b"* SEARCH 2 4 (MODSEQ %d)" % current[4]
    lines = ok(client, f'UID SEARCH MODSEQ "/flags/\\\\flagged" all {current[2]} FLAGGED')
    assert lines[-1] == b"* SEARCH 2 4 (MODSEQ %d)" % current[4]
    assert ok(client, "SEARCH MODSEQ 99999999")[-1] == b"* SEARCH"
    client.logout()


def test_qresync_select_reports_vanished_and_changed_since_the_clients_modseq(box):
    client = connect(box)
    ok(client, "ENABLE QRESYNC")
    lines = ok(client, "SELECT INBOX")
    validity, highest = code(lines, b"UIDVALIDITY"), code(lines, b"HIGHESTMODSEQ")
    ok(client, "UNSELECT")
    other = other_session(box)
    other.store("2", "+FLAGS", "(\\Seen)")
    other.store("4", "+FLAGS", "(\\Deleted)")
    other.expunge()                                             # UID 4 vanishes
    box.db(mailboxes.deliver, [box.ann], message(6), box.now())   # UID 6 arrives
    other.logout()
    lines = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest}))")
    assert b"* 5 EXISTS" in lines
    assert b"* VANISHED (EARLIER) 4" in lines
    fetched = sorted(l for l in lines if b" FETCH " in l)
    assert re.fullmatch(rb"\* 2 FETCH \(UID 2 FLAGS \(\\Seen\) MODSEQ \(\d+\)\)", fetched[0])
    assert re.fullmatch(rb"\* 5 FETCH \(UID 6 FLAGS \(\\Recent\) MODSEQ \(\d+\)\)", fetched[1])
    assert len(fetched) == 2
    # Known UIDs narrow VANISHED; another UIDVALIDITY gets no resync at all.
    lines = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest} 1:3,5))")
    assert lines[0] == b"* OK [CLOSED] Previous mailbox closed"
    assert not any(b"VANISHED" in l for l in lines)
    lines = ok(client, f"EXAMINE INBOX (QRESYNC ({validity + 1} {highest}))")
    assert not any(b"VANISHED" in l or b" FETCH " in l for l in lines)
    client.logout()


def test_qresync_from_before_pruned_history_gets_every_missing_uid(box):
    client = connect(box)
    ok(client, "ENABLE QRESYNC")
    lines = ok(client, "SELECT INBOX")
    validity, highest = code(lines, b"UIDVALIDITY"), code(lines, b"HIGHESTMODSEQ")
    ok(client, "UID STORE 1,3 +FLAGS.SILENT (\\Deleted)")      # highest + 1
    ok(client, "EXPUNGE")                                       # + 2
    ok(client, "UID STORE 2 +FLAGS.SILENT (\\Deleted)")         # + 3
    ok(client, "EXPUNGE")                                       # + 4
    folder = box.db(mailboxes.require_folder, box.ann, "INBOX")
    exact = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest + 2}))")
    assert b"* VANISHED (EARLIER) 2" in exact                 # only the later expunge
    box.db(vanished.prune, folder.id, folder.modseq - 1)      # forget the first expunge
    lines = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest + 2}))")
    assert b"* VANISHED (EARLIER) 1:3" in lines               # all missing UIDs instead
    lines = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest} 2:5))")
    assert b"* VANISHED (EARLIER) 2:3" in lines               # within the known UIDs
    client.logout()


def test_expunges_are_vanished_once_qresync_is_enabled(box):
    client = connect(box)
    ok(client, "SELECT INBOX")
    ok(client, "STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert ok(client, "EXPUNGE") == [b"* 1 EXPUNGE"]            # not enabled: EXPUNGE
    ok(client, "ENABLE QRESYNC")
    ok(client, "STORE 1:2 +FLAGS.SILENT (\\Deleted)")
    status, lines = command(client, "UID EXPUNGE 2")
    assert lines == [b"* VANISHED 2"] and status.startswith(b"OK [HIGHESTMODSEQ ")
    assert ok(client, "EXPUNGE") == [b"* VANISHED 3"]
    other = other_session(box)
    other.store("1", "+FLAGS", "(\\Deleted)")                   # UID 4, from elsewhere
    other.expunge()
    other.logout()
    assert b"* VANISHED 4" in ok(client, "NOOP")
    ok(client, "MOVE 1 Trash")                                  # UID 5
    client.logout()


def test_move_with_qresync_is_vanished(box):
    client = connect(box)
    ok(client, "ENABLE QRESYNC")
    ok(client, "SELECT INBOX")
    lines = ok(client, "UID MOVE 2:3 Trash")
    assert lines[-1] == b"* VANISHED 2:3"
    client.logout()


def test_uid_fetch_changedsince_vanished(box):
    client = connect(box)
    assert command(client, "SELECT INBOX (QRESYNC (1 1))")[0].startswith(b"BAD")   # not enabled
    ok(client, "ENABLE QRESYNC")
    highest = code(ok(client, "SELECT INBOX"), b"HIGHESTMODSEQ")
    ok(client, "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    ok(client, "EXPUNGE")
    ok(client, "STORE 1 +FLAGS.SILENT (\\Flagged)")
    lines = ok(client, f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
    assert lines[0] == b"* VANISHED (EARLIER) 2,4"
    assert len(lines) == 2 and lines[1].startswith(b"* 1 FETCH (UID 1 FLAGS (\\Flagged")
    lines = ok(client, f"UID FETCH 3:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
    assert lines == [b"* VANISHED (EARLIER) 4"]
    status, _ = command(client, f"FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)")
    assert status.startswith(b"BAD")                            # UID FETCH only
    assert command(client, "SELECT INBOX (FOO)")[0].startswith(b"BAD")
    client.logout()


def test_pop3_deletions_are_vanished_for_qresync(box):
    """POP3's deletions go through the same record (store/maildrop.py)."""
    from mailstack.store import maildrop
    client = connect(box)
    ok(client, "ENABLE QRESYNC")
    lines = ok(client, "SELECT INBOX")
    validity, highest = code(lines, b"UIDVALIDITY"), code(lines, b"HIGHESTMODSEQ")
    ok(client, "UNSELECT")
    ids = box.db(lambda c: [m.id for m in mailboxes.list_messages(
        c, mailboxes.require_folder(c, box.ann, "INBOX").id)][:2])
    box.db(maildrop.close_maildrop, box.ann, "nobody", ids)
    lines = ok(client, f"SELECT INBOX (QRESYNC ({validity} {highest}))")
    assert b"* VANISHED (EARLIER) 1:2" in lines and b"* 3 EXISTS" in lines
    client.logout()


@pytest.mark.parametrize("qresync", [False, True])
def test_a_new_message_that_gets_a_deleted_messages_row_id_is_not_taken_for_it(box, qresync):
    """SQLite gives the id of a deleted last row to the next row: the session must see an
    expunge and a new message, not a flag change of the old one (sessions key by UID)."""
    client = connect(box)
    if qresync:
        ok(client, "ENABLE QRESYNC")
    ok(client, "SELECT INBOX")
    other = other_session(box)
    other.store("5", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    box.db(mailboxes.deliver, [box.ann], message(6), box.now())   # before the client looks
    lines = ok(client, "NOOP")
    assert (b"* VANISHED 5" if qresync else b"* 5 EXPUNGE") in lines
    assert b"* 5 EXISTS" in lines
    assert ok(client, "FETCH 5 (UID)") == [b"* 5 FETCH (UID 6)"]
    client.logout()


def test_no_modseq_told_passes_an_expunge_the_client_has_not_heard_of(box):
    """A client resyncs from the highest MODSEQ it was told: while STORE may not announce
    another session's expunge (RFC 3501 §7.4.1), its MODSEQ stays below that expunge."""
    client = connect(box)
    highest = code(ok(client, "SELECT INBOX (CONDSTORE)"), b"HIGHESTMODSEQ")
    other = other_session(box)
    other.store("2", "+FLAGS", "(\\Deleted)")                   # highest + 1
    other.expunge()                                             # highest + 2
    other.logout()
    lines = ok(client, "STORE 1 +FLAGS (\\Seen)")                # highest + 3
    told = int(re.search(rb"\* 1 FETCH \(.*MODSEQ \((\d+)\)", lines[0]).group(1))
    assert told <= highest and not any(b"EXPUNGE" in l for l in lines)
    assert b"* 2 EXPUNGE" in ok(client, "NOOP")
    assert modseqs(client, "1") == {1: highest + 3}
    client.logout()


def test_fetch_never_answers_with_the_message_that_took_an_expunged_ones_row_id(box):
    """The same reuse of a row id (SQLite), seen by a FETCH before the session learns of
    the expunge: the old message is gone (EXPUNGEISSUED), never shown with the new body."""
    client = connect(box)
    ok(client, "SELECT INBOX")
    other = other_session(box)
    other.store("5", "+FLAGS", "(\\Deleted)")
    other.expunge()
    other.logout()
    box.db(mailboxes.deliver, [box.ann], message(6), box.now())
    status, lines = command(client, "FETCH 5 (BODY.PEEK[TEXT])")
    assert status.startswith(b"NO [EXPUNGEISSUED]") and not any(b"body 6" in l for l in lines)
    client.logout()
