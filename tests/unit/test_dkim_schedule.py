"""DKIM keys over time: keygen, rotation with its delay, retirement, and what signs when.

Why: a receiver verifies with the key it finds in DNS when the message arrives, so a new
key must be published before it signs and the old one must keep signing until then and
stay published a while after (dkim/schedule.py).  Every step reads the injected clock
(``task.Clock``) or ``--at``; the tests move it.
"""

from __future__ import annotations

from datetime import timedelta

import dkim
import pytest
from twisted.internet import task

from mailstack import clock as clocks
from mailstack.dkim import keys, rotation, schedule
from mailstack.dkim.signer import Signer, from_domain
from mailstack.store import dkim_keys
from tests.support import reactor as reactor_thread

DAY = 86400
DELAY, KEEP = timedelta(days=3), timedelta(days=7)
MESSAGE = (b"From: Ann <ann@example.test>\r\nTo: x@remote.test\r\nSubject: hello\r\n"
           b"Date: Thu, 03 Dec 2026 12:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n")

# RSA-2048 key generation is slow: one pair of each algorithm, reused by every test.
PAIRS = [rotation.make_pairs(), rotation.make_pairs()]


@pytest.fixture
def clock():
    clock = task.Clock()
    clock.advance(1700000000)      # 2023-11-14: in the past, as dkimpy checks t= against the system clock
    return clock


@pytest.fixture
def pooled(db):
    """The store with its thread pools running: the signer reads its keys through them."""
    db.start()
    return db


def now(clock):
    return clocks.now(clock)


def signing_selectors(db, at):
    return sorted(k.selector for k in schedule.choose(db.read_sync(dkim_keys.listing, "example.test"), at))


def test_keygen_makes_an_ed25519_and_an_rsa_key_that_sign_at_once(db, clock):
    at = now(clock)
    plan = db.run_sync(rotation.keygen, "example.test", at, PAIRS[0])
    day = at.strftime("%Y%m%d")
    assert plan.selectors == {"ed25519": f"{day}e", "rsa": f"{day}r"} and plan.signs_from == at
    listed = db.read_sync(dkim_keys.listing, "example.test")
    assert {(k.algorithm, schedule.state(k, at, KEEP)) for k in listed} == {
        ("ed25519", "signing"), ("rsa", "signing")}
    assert signing_selectors(db, at - timedelta(seconds=1)) == []      # not before it was made
    with pytest.raises(schedule.ScheduleError, match="use `mailstack dkim rotate`"):
        db.run_sync(rotation.keygen, "example.test", at, PAIRS[1])


def test_rotation_publishes_first_signs_after_the_delay_and_withdraws_the_old_key_later(db, clock):
    first = db.run_sync(rotation.keygen, "example.test", now(clock), PAIRS[0])
    clock.advance(10 * DAY)
    rotated_at = now(clock)
    plan = db.run_sync(rotation.rotate, "example.test", rotated_at, DELAY, PAIRS[1])
    old, new = sorted(first.selectors.values()), sorted(plan.selectors.values())
    assert plan.signs_from == rotated_at + DELAY and old != new

    def states(at):
        return {k.selector: schedule.state(k, at, KEEP)
                for k in db.read_sync(dkim_keys.listing, "example.test")}

    # Published at once, the old keys still signing: no message goes unsigned.
    assert signing_selectors(db, now(clock)) == old
    assert {states(now(clock))[s] for s in new} == {"published"}
    clock.advance(DELAY.total_seconds() - 1)
    assert signing_selectors(db, now(clock)) == old
    clock.advance(1)                                   # the moment of the switch
    assert signing_selectors(db, now(clock)) == new
    assert {states(now(clock))[s] for s in old} == {"retired"}     # still in DNS
    clock.advance(KEEP.total_seconds() - 1)
    assert {states(now(clock))[s] for s in old} == {"retired"}
    clock.advance(1)
    assert {states(now(clock))[s] for s in old} == {"withdrawn"}
    assert signing_selectors(db, now(clock)) == new


def test_a_rotation_waits_for_the_last_one_and_needs_keys(db, clock):
    with pytest.raises(schedule.ScheduleError, match="keygen` first"):
        db.run_sync(rotation.rotate, "example.test", now(clock), DELAY, PAIRS[0])
    db.run_sync(rotation.keygen, "example.test", now(clock), PAIRS[0])
    db.run_sync(rotation.rotate, "example.test", now(clock), DELAY, PAIRS[1])
    clock.advance(DAY)
    with pytest.raises(schedule.ScheduleError, match="already under way"):
        db.run_sync(rotation.rotate, "example.test", now(clock), DELAY, PAIRS[0])
    clock.advance(2 * DAY)                             # the rotation has happened: again
    plan = db.run_sync(rotation.rotate, "example.test", now(clock), DELAY, PAIRS[0])
    assert len(plan.retire) == 2


def test_selectors_of_one_day_do_not_collide_and_a_named_one_is_exact(db, clock):
    at = now(clock)
    day = at.strftime("%Y%m%d")
    db.run_sync(rotation.keygen, "example.test", at, PAIRS[0])
    plan = db.run_sync(rotation.rotate, "example.test", at, timedelta(0), PAIRS[1])
    assert plan.selectors == {"ed25519": f"{day}-2e", "rsa": f"{day}-2r"}
    one = db.run_sync(rotation.keygen, "other.test", at, {"rsa": PAIRS[0]["rsa"]}, "mail")
    assert one.selectors == {"rsa": "mail"}
    with pytest.raises(schedule.ScheduleError, match="already exists"):
        db.run_sync(rotation.keygen, "other.test", at, {"ed25519": PAIRS[0]["ed25519"]}, "mail")


def test_the_signer_follows_the_clock_and_reloads_new_keys(pooled, clock):
    db = pooled
    signer = Signer(db, clock, reload=60)
    reactor_thread.call(signer.ready)
    assert signer.signatures(MESSAGE, now(clock), "example.test") == b""      # no keys yet
    first = db.run_sync(rotation.keygen, "example.test", now(clock), PAIRS[0])
    clock.advance(59)
    reactor_thread.call(signer.ready)                   # not reloaded within the interval
    assert signer.signatures(MESSAGE, now(clock), "example.test") == b""
    clock.advance(1)
    reactor_thread.call(signer.ready)
    assert selectors_of(signer.signatures(MESSAGE, now(clock), "example.test")) == sorted(
        first.selectors.values())
    plan = db.run_sync(rotation.rotate, "example.test", now(clock), DELAY, PAIRS[1])
    clock.advance(DELAY.total_seconds())
    reactor_thread.call(signer.ready)
    signed = signer.signatures(MESSAGE, now(clock), "example.test")
    assert selectors_of(signed) == sorted(plan.selectors.values())
    published = {k.selector: k for k in db.read_sync(dkim_keys.listing, "example.test")}
    assert verified(signed + MESSAGE, published) == [True, True]


def test_only_the_envelope_senders_own_from_domain_is_signed(pooled, clock):
    db = pooled
    db.run_sync(rotation.keygen, "example.test", now(clock), PAIRS[0])
    signer = Signer(db, clock)
    reactor_thread.call(signer.ready)
    at = now(clock)
    assert signer.signatures(MESSAGE, at, "other.test") == b""        # From is not theirs
    assert signer.signatures(MESSAGE, at, "") == b""                   # null sender
    assert signer.signatures(MESSAGE, at, "EXAMPLE.test") != b""
    assert signer.signatures(MESSAGE, at) != b""                       # a notice we wrote
    twice = b"From: a@example.test\r\n" + MESSAGE
    assert signer.signatures(twice, at) == b""                         # two From fields
    assert from_domain(b"From: a@x.test, b@x.test\r\n\r\n") is None
    assert from_domain(b"From: \"Ann\" <Ann@Example.TEST>\r\n\r\nbody") == "example.test"


def test_the_signature_covers_the_usual_fields_relaxed_with_from_oversigned(pooled, clock):
    db = pooled
    db.run_sync(rotation.keygen, "example.test", now(clock), PAIRS[0])
    signer = Signer(db, clock)
    reactor_thread.call(signer.ready)
    signed = signer.signatures(MESSAGE, now(clock), "example.test")
    for field in dkim_fields(signed):
        tags = dkim.util.parse_tag_value(field.split(b":", 1)[1])
        assert tags[b"c"] == b"relaxed/relaxed" and tags[b"d"] == b"example.test"
        names = [h.strip() for h in tags[b"h"].split(b":")]
        assert names.count(b"from") == 2
        assert {b"to", b"subject", b"date", b"message-id", b"mime-version",
                b"content-type"} <= set(names)
    assert {dkim.util.parse_tag_value(f.split(b":", 1)[1])[b"a"] for f in dkim_fields(signed)} \
        == {b"ed25519-sha256", b"rsa-sha256"}


def test_no_private_key_in_a_repr():
    pair = PAIRS[0]["rsa"]
    assert pair.private_key not in repr(pair) and "PRIVATE" not in repr(PAIRS[0])


def dkim_fields(signed: bytes) -> list[bytes]:
    return [b"DKIM-Signature:" + part for part in signed.split(b"DKIM-Signature:")[1:]]


def selectors_of(signed: bytes) -> list[str]:
    return sorted(dkim.util.parse_tag_value(f.split(b":", 1)[1])[b"s"].decode()
                  for f in dkim_fields(signed))


def verified(message: bytes, published) -> list[bool]:
    """dkimpy's verifier on each signature, the key record taken from the store's listing."""
    def dnsfunc(name, timeout=5):
        selector = name.decode().split("._domainkey.")[0]
        key = published[selector]
        return keys.txt_value(key.algorithm, key.public_key).encode()
    d = dkim.DKIM(message)
    count = message.count(b"DKIM-Signature:")
    return [d.verify(idx=i, dnsfunc=dnsfunc) for i in range(count)]
