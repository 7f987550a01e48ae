"""Sieve script storage on every backend (store/sieve_scripts.py): the limits of [sieve],
one active script per account (kept by the database too), RFC 5804's refusals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from twisted.internet import reactor

from mailstack.store import directory, sieve_scripts as store
from mailstack.store.db import Database
from mailstack.store.errors import Conflict, NotFound
from mailstack.store.schema import sieve_scripts

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(hours=1)
LIMITS = store.Limits(max_script_size=100, max_scripts=3)


@pytest.fixture
def db(db_url):
    database = Database(db_url, reactor=reactor, threads=2)
    database.run_sync(directory.add_domain, "example.test", NOW)
    yield database
    database.stop()


@pytest.fixture
def ann(db) -> int:
    return db.run_sync(directory.add_account, "ann@example.test", "h", NOW)


def put(db, account, name, content="keep;", at=NOW, limits=LIMITS):
    db.run_sync(store.put_script, account, name, content, at, limits)


def listed(db, account):
    return [(s.name, s.active) for s in db.read_sync(store.list_scripts, account)]


def test_put_replaces_a_script_of_the_same_name_keeping_its_active_flag(db, ann):
    put(db, ann, "main", "keep;")
    db.run_sync(store.set_active, ann, "main", NOW)
    put(db, ann, "main", "discard;", at=LATER)
    assert db.read_sync(store.get_script, ann, "main") == "discard;"
    assert db.read_sync(store.active_script, ann) == ("main", "discard;")
    [info] = db.read_sync(store.list_scripts, ann)
    assert info.updated_at == LATER and info.size == len("discard;")


def test_max_scripts_refuses_a_new_name_but_not_a_replacement(db, ann):
    for name in ("a", "b", "c"):
        put(db, ann, name)
    with pytest.raises(store.TooManyScripts):
        put(db, ann, "d")
    put(db, ann, "c", "discard;")          # replacing adds none
    with pytest.raises(store.TooManyScripts):
        db.read_sync(store.have_space, ann, "d", 5, LIMITS)
    db.read_sync(store.have_space, ann, "a", 5, LIMITS)


def test_max_script_size_counts_utf8_octets(db, ann):
    with pytest.raises(store.ScriptTooLarge):
        put(db, ann, "big", "# " + "é" * 50)        # 102 octets, 52 characters
    with pytest.raises(store.ScriptTooLarge):
        db.read_sync(store.have_space, ann, "big", 101, LIMITS)
    assert listed(db, ann) == []


def test_setactive_switches_and_empty_name_deactivates(db, ann):
    put(db, ann, "a")
    put(db, ann, "b")
    db.run_sync(store.set_active, ann, "a", NOW)
    db.run_sync(store.set_active, ann, "b", NOW)
    assert listed(db, ann) == [("a", False), ("b", True)]
    db.run_sync(store.set_active, ann, "", NOW)
    assert listed(db, ann) == [("a", False), ("b", False)]
    assert db.read_sync(store.active_script, ann) is None
    with pytest.raises(NotFound):
        db.run_sync(store.set_active, ann, "nope", NOW)


def test_the_database_itself_refuses_two_active_scripts(db, ann):
    put(db, ann, "a")
    put(db, ann, "b")
    db.run_sync(lambda c: c.execute(update(sieve_scripts).where(sieve_scripts.c.name == "a")
                                    .values(active=True)))
    with pytest.raises(Conflict):
        db.run_sync(lambda c: c.execute(update(sieve_scripts)
                                        .where(sieve_scripts.c.name == "b").values(active=True)))


def test_delete_refuses_the_active_script_and_unknown_names(db, ann):
    put(db, ann, "a")
    db.run_sync(store.set_active, ann, "a", NOW)
    with pytest.raises(store.ScriptActive):
        db.run_sync(store.delete_script, ann, "a")
    with pytest.raises(NotFound):
        db.run_sync(store.delete_script, ann, "b")
    db.run_sync(store.set_active, ann, "", NOW)
    db.run_sync(store.delete_script, ann, "a")
    assert listed(db, ann) == []


def test_rename_keeps_active_and_refuses_an_existing_target(db, ann):
    put(db, ann, "a")
    put(db, ann, "b")
    db.run_sync(store.set_active, ann, "a", NOW)
    with pytest.raises(Conflict):
        db.run_sync(store.rename_script, ann, "a", "b", NOW)
    with pytest.raises(NotFound):
        db.run_sync(store.rename_script, ann, "x", "y", NOW)
    db.run_sync(store.rename_script, ann, "a", "c", NOW)
    assert listed(db, ann) == [("b", False), ("c", True)]


def test_scripts_are_per_account_and_go_with_it(db, ann):
    bob = db.run_sync(directory.add_account, "bob@example.test", "h", NOW)
    put(db, ann, "a", "keep;")
    put(db, bob, "a", "discard;")
    assert db.read_sync(store.get_script, bob, "a") == "discard;"
    db.run_sync(directory.delete_account, "ann@example.test")
    assert listed(db, ann) == [] and listed(db, bob) == [("a", False)]
